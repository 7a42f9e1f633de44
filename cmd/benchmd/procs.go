package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenledger/tokenledger/internal/loadgen"
)

// proc is a process started by the benchmark.
type proc struct {
	name string
	cmd  *exec.Cmd
	url  string // for servers: where they listen
	addr string
	done chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends sig and waits up to a minute.
func (p *proc) stop(sig syscall.Signal) {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePort returns a free loopback port.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startRedis starts a redis-server that saves nothing, in dir.
func startRedis(dir string) *proc {
	must(os.MkdirAll(dir, 0o755))
	port := freePort()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	p := &proc{name: "redis-server", cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	must(cmd.Start())
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				return p
			}
		}
		if time.Now().After(deadline) {
			fail("redis-server on %s did not start: %v", p.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startListening runs a server command that prints "... listening on URL"
// on stdout and returns once it does.
func startListening(name string, env []string, dir string, args ...string) *proc {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = env, dir
	stdout, err := cmd.StdoutPipe()
	must(err)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	must(err)
	cmd.Stderr = logf
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	must(cmd.Start())
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "listening on "); ok {
				found <- u
			}
		}
	}()
	select {
	case p.url = <-found:
		p.addr = strings.TrimPrefix(p.url, "http://")
		return p
	case <-p.done:
		log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		fail("%s exited before listening:\n%s", name, tail(string(log), 2000))
	case <-time.After(5 * time.Minute):
		fail("%s did not listen within 5 minutes", name)
	}
	return nil
}

// cpuSeconds returns the user+system CPU seconds pid has used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// statusKB returns a "VmHWM"-like field of /proc/<pid>/status in KiB.
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// benchRun is one `tokenledger bench` run and the CPU the processes
// around it used.
type benchRun struct {
	cmd       string // the command line, for the report
	res       loadgen.Result
	clientCPU float64 // seconds
	cpu       map[string]float64
}

// perReq returns µs of CPU per request.
func (b benchRun) perReq(sec float64) float64 {
	if b.res.Requests == 0 {
		return 0
	}
	return sec * 1e6 / float64(b.res.Requests)
}

// runBench runs `tokenledger bench` with args (plus --json --quiet) and
// measures the CPU of watch (name → pid) over the run.
func runBench(bin string, env []string, watch map[string]int, show string, args ...string) benchRun {
	before := map[string]float64{}
	for n, pid := range watch {
		before[n] = cpuSeconds(pid)
	}
	full := append([]string{"bench"}, args...)
	cmd := exec.Command(bin, append(full, "--json", "--quiet", "--into-live-data")...) // rounds share a server it started itself
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := benchRun{cmd: "tokenledger " + strings.Join(strings.Fields(show+" "+strings.Join(full, " ")), " "), cpu: map[string]float64{}}
	for n, pid := range watch {
		r.cpu[n] = cpuSeconds(pid) - before[n]
	}
	if cmd.ProcessState != nil {
		r.clientCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if jerr := json.Unmarshal(out.Bytes(), &r.res); jerr != nil {
		fail("%s: %v / %v\n%s%s", r.cmd, err, jerr, out.String(), errb.String())
	}
	if err != nil {
		note("%s exited with %v: %s", r.cmd, err, strings.TrimSpace(tail(errb.String(), 300)))
	}
	return r
}

// goBench runs `go test -run ^$ -bench ...` and returns the metrics per
// benchmark name (without the -N suffix) and the raw benchmark lines.
func goBench(ctx context.Context, timeout time.Duration, args ...string) (map[string]map[string]float64, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"test", "-run", "^$"}, args...)...)
	out, err := cmd.CombinedOutput()
	metrics := map[string]map[string]float64{}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Benchmark") && !strings.Contains(line, "per round") {
			continue
		}
		lines = append(lines, strings.TrimSpace(line))
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, perr := strconv.ParseFloat(f[i], 64)
			if perr == nil {
				m[f[i+1]] = v
			}
		}
		metrics[name] = m
	}
	if err != nil {
		return metrics, strings.Join(lines, "\n"), fmt.Errorf("go test %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 1500))
	}
	return metrics, strings.Join(lines, "\n"), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func must(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchmd: "+format+"\n", args...)
	cleanup()
	os.Exit(1)
}

// note prints a progress line on stderr.
func note(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.0fs] "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

// batchRedis is what Redis ran during one row of HTTP batches.
type batchRedis struct {
	commands  map[string]cmdStat
	dayEvents int64 // the day's requestCount at the row's end
}
