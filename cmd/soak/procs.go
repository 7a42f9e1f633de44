package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process that the soak kills, stops and starts again
// with the same command line (and so the same port, data dir and spool).
type proc struct {
	name  string
	args  []string
	env   []string
	log   *os.File
	ready func(ctx context.Context) error

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped
}

// start runs the process and waits until it is ready (60 s at most).
func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited, p.stopped = cmd, exited, false
	p.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		err := p.ready(rctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready (see %s)", p.name, p.log.Name())
		case <-rctx.Done():
			return fmt.Errorf("%s was not ready within 60 s: %v (see %s)", p.name, err, p.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// signal sends SIGSTOP or SIGCONT.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	p.stopped = sig == syscall.SIGSTOP
	return p.cmd.Process.Signal(sig)
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newRedis is a redis-server on loopback port in dir, with an append-only
// file fsync'd on every write: a SIGKILL loses no write Redis answered
// (docs/redis.md, Durability), so every event tokenledger acknowledged
// after Redis took it survives the kill.
func newRedis(dir string, port int, log *os.File) *proc {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return &proc{
		name: "redis-server " + addr,
		args: []string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"},
		env: os.Environ(), log: log,
		ready: func(ctx context.Context) error { return ping(ctx, addr) },
	}
}

// ping sends PING and expects PONG (a loaded, answering server).
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// newServe is `tokenledger serve` on loopback port over Redis at
// redisURL, with its own file and spool under dir and the recording proxy
// in front of upstream (OpenAI's shape).
func newServe(bin, name, dir string, port int, redisURL, upstream string, log *os.File) *proc {
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	env := map[string]string{
		"TOKENLEDGER_STORE": "redis", "REDIS_URL": redisURL, "TOKENLEDGER_KEY_PREFIX": "soak",
		"TOKENLEDGER_FILE": dir + "/usage.json", "TOKENLEDGER_SPOOL_DIR": dir + "/spool", "TOKENLEDGER_MIGRATE": "0",
		"TOKENLEDGER_DB_TIMEOUT": "1s", "TOKENLEDGER_PROXY": "1", "TOKENLEDGER_UPSTREAM_OPENAI": upstream,
		"TOKENLEDGER_LOG_LEVEL": "warn",
	}
	return &proc{
		name: name + " (" + base + ")",
		args: []string{bin, "serve", "--addr", "127.0.0.1:" + strconv.Itoa(port)},
		env:  childEnv(env), log: log,
		ready: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz answered %d", res.StatusCode)
			}
			return nil
		},
	}
}

// childEnv is this process's environment without any tokenledger, database
// or platform setting, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TOKENLEDGER_") || strings.HasPrefix(k, "REDIS_") || strings.HasPrefix(k, "KV_") ||
			strings.HasPrefix(k, "UPSTASH_") || strings.HasPrefix(k, "VERCEL") || k == "PORT" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
