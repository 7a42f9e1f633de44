package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/testkit"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
	"github.com/tokenledger/tokenledger/store/fallback"
	tlredis "github.com/tokenledger/tokenledger/store/redis"
)

// TestMain removes the built binary when the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The binary and its processes

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds the tokenledger command once per test binary. It is built
// without -race (fast children; this test binary has the race detector)
// unless FAULTTEST_CHILD_RACE=1.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "faulttest-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "tokenledger")
		args := []string{"build", "-o", binPath}
		if os.Getenv("FAULTTEST_CHILD_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/tokenledger/tokenledger/cmd/tokenledger")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// childEnv returns the environment of a child: this process's environment
// without any tokenledger, database or platform setting, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TOKENLEDGER_"), strings.HasPrefix(name, "REDIS_"),
			strings.HasPrefix(name, "KV_"), strings.HasPrefix(name, "UPSTASH_"),
			strings.HasPrefix(name, "VERCEL"), name == "PORT":
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// server is one `tokenledger serve` child process.
type server struct {
	name   string
	env    map[string]string
	cmd    *exec.Cmd
	url    string
	stderr *testkit.SyncBuffer
	urls   chan string
	waited chan error
	exited bool
}

// startServe starts `tokenledger serve --addr 127.0.0.1:0` with env and
// waits until it prints its address and /healthz answers.
func startServe(t testing.TB, name string, env map[string]string) *server {
	t.Helper()
	s := spawnServe(t, name, env)
	s.ready(t)
	return s
}

// spawnServe starts the process and returns at once; ready waits for it.
// Several spawns followed by their readies start processes together.
func spawnServe(t testing.TB, name string, env map[string]string) *server {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0")
	cmd.Env = childEnv(env)
	setDeathSignal(cmd)
	s := &server{name: name, env: env, cmd: cmd, stderr: &testkit.SyncBuffer{}, urls: make(chan string, 1), waited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "tokenledger listening on "); ok {
				s.urls <- u
			}
		}
		s.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !s.exited {
			_ = cmd.Process.Kill()
			<-s.waited
			s.exited = true
		}
		if t.Failed() {
			t.Logf("--- log of %s (pid %d) ---\n%s", s.name, cmd.Process.Pid, tail(s.stderr.String(), 6000))
		}
	})
	return s
}

// ready waits until the process prints its address and /healthz answers.
func (s *server) ready(t testing.TB) {
	t.Helper()
	select {
	case s.url = <-s.urls:
	case err := <-s.waited:
		s.exited = true
		t.Fatalf("%s exited before listening: %v\n%s", s.name, err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not print its address in 60s\n%s", s.name, s.stderr)
	}
	waitHealthy(t, s.url)
}

// kill ends the process with SIGKILL and waits until it is gone.
func (s *server) kill(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", s.name, err)
	}
	<-s.waited
	s.exited = true
}

// stop ends the process with SIGTERM and checks that it exits cleanly.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	select {
	case err := <-s.waited:
		s.exited = true
		if err != nil {
			t.Fatalf("%s after SIGTERM: %v\n%s", s.name, err, s.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGTERM\n%s", s.name, s.stderr)
	}
}

// log returns what the process logged so far.
func (s *server) log() string { return s.stderr.String() }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// runCLI runs the binary with args and env and returns its stdout; a
// non-zero exit fails the test.
func runCLI(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = childEnv(env)
	setDeathSignal(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tokenledger %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// ---------------------------------------------------------------------------
// HTTP

// httpClient is shared by every test; its timeout is a liveness bound,
// far above what any answer should take.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0},
}

// waitHealthy polls url/healthz until it answers 200.
func waitHealthy(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := httpClient.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 in 20s (last error %v)", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postAnswer is the body of a 200 answer to POST /api/tokens (or, with
// Error, of an error answer).
type postAnswer struct {
	Accepted    int      `json:"accepted"`
	Duplicates  int      `json:"duplicates"`
	IDs         []string `json:"ids"`
	StorageType string   `json:"storageType"`
	Degraded    bool     `json:"degraded"`
	Error       string   `json:"error"`
}

// post sends events to url/api/tokens as one batch. err is set when no
// HTTP answer arrived (connection refused or reset, timeout).
func post(ctx context.Context, url string, events []event) (int, postAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/tokens", strings.NewReader(batchJSON(events)))
	if err != nil {
		return 0, postAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, postAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, postAnswer{}, err
	}
	var a postAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("answer %d is not JSON: %v: %q", resp.StatusCode, err, raw)
	}
	return resp.StatusCode, a, nil
}

// mustPost posts events, requires a 200 and returns the answer.
func mustPost(t testing.TB, url string, events []event) postAnswer {
	t.Helper()
	status, a, err := post(context.Background(), url, events)
	if err != nil || status != 200 {
		t.Fatalf("POST %d events to %s: %d %+v %v", len(events), url, status, a, err)
	}
	if len(a.IDs) != len(events) || a.Accepted+a.Duplicates != len(events) {
		t.Fatalf("POST %d events: answer %+v does not account for every event", len(events), a)
	}
	return a
}

// get GETs url and returns the status and body.
func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, raw
}

// testReport is the part of GET /api/test the tests look at.
type testReport struct {
	Status   string `json:"status"`
	Database struct {
		Kind      string  `json:"kind"`
		Connected bool    `json:"connected"`
		Error     *string `json:"error"`
	} `json:"database"`
	Fallback  fallback.Status `json:"fallback"`
	Migration struct {
		Ran               bool   `json:"ran"`
		Migrated          int    `json:"migrated"`
		Skipped           int    `json:"skipped"`
		AlreadyInDatabase int    `json:"alreadyInDatabase"`
		File              string `json:"file"`
		AlreadyMigrated   bool   `json:"alreadyMigrated"`
		Error             string `json:"error"`
	} `json:"migration"`
}

// apiTest returns the decoded GET /api/test answer and its status.
func apiTest(t testing.TB, url string) (int, testReport) {
	t.Helper()
	status, raw := get(t, url+"/api/test")
	var r testReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("/api/test: %v\n%s", err, raw)
	}
	return status, r
}

// waitDrained polls /api/test until the spool is empty, fallback has
// ended and the check passes.
func waitDrained(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, r := apiTest(t, url)
		if status == 200 && r.Status == "ok" && !r.Fallback.Active && r.Fallback.PendingEvents == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the spool did not drain within %s: /api/test %d %+v", url, within, status, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Events

// event is one usage event as the tests send it: every field the
// aggregates keep, and an id so that it can be sent again.
type event struct {
	ID        string
	Timestamp time.Time
	Model     string
	User      string // "" for none
	Session   string // "" for none
	Prompt    int64
	Complete  int64
	CacheRead int64
	Cost      tokenledger.Nanos
}

func (e event) date() tokenledger.Date { return tokenledger.DateOf(e.Timestamp) }

func (e event) total() int64 { return e.Prompt + e.Complete }

// json writes the event as the API takes it.
func (e event) json(b *strings.Builder) {
	fmt.Fprintf(b, `{"id":%q,"timestamp":%q,"model":%q,"promptTokens":%d,"completionTokens":%d`,
		e.ID, e.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), e.Model, e.Prompt, e.Complete)
	if e.CacheRead > 0 {
		fmt.Fprintf(b, `,"cacheReadTokens":%d`, e.CacheRead)
	}
	if e.Cost > 0 {
		fmt.Fprintf(b, `,"costUsd":%d.%09d`, e.Cost/1e9, e.Cost%1e9)
	}
	if e.User != "" {
		fmt.Fprintf(b, `,"userId":%q`, e.User)
	}
	if e.Session != "" {
		fmt.Fprintf(b, `,"sessionId":%q`, e.Session)
	}
	b.WriteByte('}')
}

func batchJSON(events []event) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		e.json(&b)
	}
	b.WriteByte(']')
	return b.String()
}

// genEvents makes n events with ids "<prefix>-<i>", deterministic for a
// seed, spread over the last `days` UTC days (today included; every
// timestamp is at least a minute in the past), 7 models, 40 users (one
// event in ten without a user) and 150 sessions (one in ten without).
func genEvents(prefix string, n, days int, seed uint64) []event {
	r := rand.New(rand.NewPCG(seed, 0x70c3))
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	out := make([]event, n)
	for i := range out {
		d := r.IntN(days)
		e := event{
			ID:        fmt.Sprintf("%s-%d", prefix, i),
			Timestamp: base.Add(-time.Duration(d)*24*time.Hour - time.Duration(r.IntN(1800))*time.Second),
			Model:     fmt.Sprintf("model-%d", r.IntN(7)),
			Prompt:    int64(1 + r.IntN(5000)),
			Complete:  int64(r.IntN(2000)),
			Cost:      tokenledger.Nanos(r.IntN(50_000_000)),
		}
		e.CacheRead = int64(r.IntN(int(e.Prompt)/2 + 1))
		if r.IntN(10) != 0 {
			e.User = fmt.Sprintf("user-%d", r.IntN(40))
		}
		if r.IntN(10) != 0 {
			e.Session = fmt.Sprintf("sess-%d", r.IntN(150))
		}
		out[i] = e
	}
	return out
}

// batches cuts events into batches of 1 to max events, deterministically.
func batches(events []event, max int, seed uint64) [][]event {
	r := rand.New(rand.NewPCG(seed, 0xba7c))
	var out [][]event
	for len(events) > 0 {
		n := min(1+r.IntN(max), len(events))
		out = append(out, events[:n])
		events = events[n:]
	}
	return out
}

// ---------------------------------------------------------------------------
// Load: many clients posting batches

// outcome is what a load run saw: the events answered 200 (acknowledged)
// and those that got anything else.
type outcome struct {
	mu       sync.Mutex
	acked    []event
	unacked  []event
	degraded int // batches answered 200 with degraded: true
	// duplicates counts fresh events answered as duplicates: the events
	// are all fresh, so there must be none — not even when the REST store
	// sent a call again whose first reply was lost (its claim token).
	duplicates int
	failures   []string
	maxLatency time.Duration
}

func (o *outcome) ackedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

// load has `clients` goroutines post events (cut into batches of 1 to
// maxBatch) to the URL urlFor returns for each request, until every event
// was sent once. Each batch answered 200 must account for every event (as
// accepted or, see outcome.duplicates, duplicate) with its id; other
// answers, and requests without an answer, leave their events
// unacknowledged. It returns when every client is done.
func load(t testing.TB, events []event, clients, maxBatch int, urlFor func(client, req int) string) *outcome {
	t.Helper()
	o, done := startLoad(t, events, clients, maxBatch, nil, urlFor)
	<-done
	return o
}

// startLoad is load in the background: done closes when every client is
// done. Clients also stop, leaving the rest of their events unsent, when
// stop closes (nil: never).
func startLoad(t testing.TB, events []event, clients, maxBatch int, stop <-chan struct{}, urlFor func(client, req int) string) (*outcome, <-chan struct{}) {
	o := &outcome{}
	var wg sync.WaitGroup
	for c := range clients {
		var mine []event
		for i := c; i < len(events); i += clients {
			mine = append(mine, events[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req, b := range batches(mine, maxBatch, uint64(c)) {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				status, a, err := post(context.Background(), urlFor(c, req), b)
				took := time.Since(start)
				o.mu.Lock()
				o.maxLatency = max(o.maxLatency, took)
				switch {
				case err == nil && status == 200:
					if a.Accepted+a.Duplicates != len(b) || !slices.Equal(a.IDs, ids(b)) {
						t.Errorf("a batch of %d new events was answered %+v", len(b), a)
					}
					o.duplicates += a.Duplicates
					o.acked = append(o.acked, b...)
					if a.Degraded {
						o.degraded++
					}
				default:
					o.unacked = append(o.unacked, b...)
					if len(o.failures) < 5 {
						o.failures = append(o.failures, fmt.Sprintf("%d %q %v", status, a.Error, err))
					}
				}
				o.mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return o, done
}

func ids(events []event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// noDuplicates fails t when a fresh event was answered as a duplicate.
func (o *outcome) noDuplicates(t testing.TB) {
	t.Helper()
	if o.duplicates > 0 {
		t.Errorf("%d fresh events were answered as duplicates", o.duplicates)
	}
}

// waitAcked polls until o has acknowledged at least n events.
func waitAcked(t testing.TB, o *outcome, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for o.ackedCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged after 60s, waiting for %d", o.ackedCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Expectations: the aggregates a set of events must produce

// ledger is what a set of events must add up to, computed here
// independently of the code under test.
type ledger struct {
	days map[tokenledger.Date]*dayWant
}

type dayWant struct {
	day      tokenledger.Day
	users    map[string]tokenledger.Totals
	userSet  map[string]bool
	sessions map[string]bool
}

func newLedger(sets ...[]event) *ledger {
	l := &ledger{days: map[tokenledger.Date]*dayWant{}}
	for _, s := range sets {
		for _, e := range s {
			l.add(e)
		}
	}
	return l
}

func (l *ledger) add(e event) {
	d := l.days[e.date()]
	if d == nil {
		d = &dayWant{day: tokenledger.Day{Date: e.date(), Models: map[string]tokenledger.Totals{}},
			users: map[string]tokenledger.Totals{}, userSet: map[string]bool{}, sessions: map[string]bool{}}
		l.days[e.date()] = d
	}
	t := tokenledger.Totals{PromptTokens: e.Prompt, CompletionTokens: e.Complete, TotalTokens: e.total(), RequestCount: 1, Cost: e.Cost}
	// An event sent with its cost is priced by the client; the others'
	// models ("model-N") are in no price table.
	src := tokenledger.Unpriced
	if e.Cost > 0 {
		src = tokenledger.PricedByClient
	}
	t.Pricing.Count(src)
	d.day.Pricing.Count(src)
	d.day.PromptTokens += e.Prompt
	d.day.CompletionTokens += e.Complete
	d.day.TotalTokens += e.total()
	d.day.RequestCount++
	d.day.CacheReadTokens += e.CacheRead
	d.day.Cost += e.Cost
	m := d.day.Models[e.Model]
	m.Add(t)
	d.day.Models[e.Model] = m
	if e.User != "" {
		u := d.users[e.User]
		u.Add(t)
		d.users[e.User] = u
		d.userSet[e.User] = true
	}
	if e.Session != "" {
		d.sessions[e.Session] = true
	}
	d.day.UniqueUsers, d.day.UniqueSessions = int64(len(d.userSet)), int64(len(d.sessions))
}

// requests returns how many events the ledger holds.
func (l *ledger) requests() int64 {
	var n int64
	for _, d := range l.days {
		n += d.day.RequestCount
	}
	return n
}

// snapshot is what a tokenledger answers for a window of days: action=all,
// action=models and action=users, without the timestamps.
type snapshot struct {
	All struct {
		TodayUsage *tokenledger.Day  `json:"todayUsage"`
		History    []tokenledger.Day `json:"history"`
		Stats      tokenledger.Stats `json:"stats"`
	}
	Models []tokenledger.ModelTotals
	Users  []tokenledger.UserTotals
	// Raw holds the three answers without "timestamp", to compare
	// instances byte for byte.
	Raw [3]string
}

// getReport is getJSON for a report, which a busy machine may answer 503
// for a moment (the database did not answer within the timeout, or a
// spooled event is still being delivered): it tries again for up to 30 s.
func getReport(t testing.TB, url string, v any) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, raw := get(t, url)
		if status == 200 {
			if err := json.Unmarshal(raw, v); err != nil {
				t.Fatalf("GET %s: %v\n%s", url, err, raw)
			}
			return raw
		}
		if status != 503 || time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s", url, status, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// read takes a snapshot of the last `days` days through url.
func read(t testing.TB, url string, days int) snapshot {
	t.Helper()
	var s snapshot
	var models struct {
		Models []tokenledger.ModelTotals `json:"models"`
	}
	var users struct {
		Users []tokenledger.UserTotals `json:"users"`
	}
	for i, q := range []struct {
		action string
		v      any
	}{{"all", &s.All}, {"models", &models}, {"users", &users}} {
		raw := getReport(t, fmt.Sprintf("%s/api/tokens?action=%s&days=%d", url, q.action, days), q.v)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "timestamp")
		b, _ := json.Marshal(m)
		s.Raw[i] = string(b)
	}
	s.Models, s.Users = models.Models, users.Users
	return s
}

// check compares a snapshot with what the ledger's events must produce,
// exactly: every day of the window (totals, unique counts, per-model
// totals), stats, the models report and the users report.
func (l *ledger) check(t testing.TB, s snapshot) {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	inWindow := map[tokenledger.Date]bool{}
	for _, got := range s.All.History {
		inWindow[got.Date] = true
		want := tokenledger.EmptyDay(got.Date)
		if d := l.days[got.Date]; d != nil {
			want = d.day
		}
		if !sameDay(got, want) {
			bad("day %s:\n   got %s\n  want %s", got.Date, dayString(got), dayString(want))
		}
	}
	for date := range l.days {
		if !inWindow[date] {
			bad("day %s holds events but is not in the history of %d days", date, len(s.All.History))
		}
	}

	var want tokenledger.Stats
	modelSums, userSums := map[string]tokenledger.Totals{}, map[string]tokenledger.Totals{}
	var best tokenledger.Day
	for _, d := range l.days {
		want.TotalTokensAllTime += d.day.TotalTokens
		want.TotalRequests += d.day.RequestCount
		want.TotalCost += d.day.Cost
		want.Pricing.Add(d.day.Pricing)
		want.DaysTracked++
		if want.MostActiveDate == nil || d.day.TotalTokens > best.TotalTokens ||
			(d.day.TotalTokens == best.TotalTokens && d.day.Date > best.Date) {
			best = d.day
			want.MostActiveDate = &best.Date
		}
		for name, t := range d.day.Models {
			m := modelSums[name]
			m.Add(t)
			modelSums[name] = m
		}
		for name, t := range d.users {
			u := userSums[name]
			u.Add(t)
			userSums[name] = u
		}
	}
	if want.TotalRequests > 0 {
		want.AvgTokensPerRequest = (2*want.TotalTokensAllTime + want.TotalRequests) / (2 * want.TotalRequests)
	}
	got := s.All.Stats
	if got.TotalTokensAllTime != want.TotalTokensAllTime || got.TotalRequests != want.TotalRequests ||
		got.AvgTokensPerRequest != want.AvgTokensPerRequest || got.DaysTracked != want.DaysTracked ||
		got.TotalCost != want.TotalCost || !reflect.DeepEqual(got.MostActiveDate, want.MostActiveDate) {
		bad("stats:\n   got %+v (mostActiveDate %v)\n  want %+v (mostActiveDate %v)", got, deref(got.MostActiveDate), want, deref(want.MostActiveDate))
	}

	gotModels := map[string]tokenledger.Totals{}
	for i, m := range s.Models {
		gotModels[m.Model] = m.Totals
		if i > 0 && (m.TotalTokens > s.Models[i-1].TotalTokens ||
			m.TotalTokens == s.Models[i-1].TotalTokens && m.Model < s.Models[i-1].Model) {
			bad("models report out of order at %d (%s after %s)", i, m.Model, s.Models[i-1].Model)
		}
	}
	problems = append(problems, diffTotals("model", gotModels, modelSums)...)
	gotUsers := map[string]tokenledger.Totals{}
	for i, u := range s.Users {
		gotUsers[u.UserID] = u.Totals
		if i > 0 && (u.TotalTokens > s.Users[i-1].TotalTokens ||
			u.TotalTokens == s.Users[i-1].TotalTokens && u.UserID < s.Users[i-1].UserID) {
			bad("users report out of order at %d (%s after %s)", i, u.UserID, s.Users[i-1].UserID)
		}
	}
	problems = append(problems, diffTotals("user", gotUsers, userSums)...)
	if len(problems) > 0 {
		if len(problems) > 12 {
			problems = append(problems[:12], fmt.Sprintf("… and %d more", len(problems)-12))
		}
		t.Errorf("the totals are not exact (%d events expected):\n%s", l.requests(), strings.Join(problems, "\n"))
	}
}

// diffTotals lists the names whose totals differ between got and want.
func diffTotals(kind string, got, want map[string]tokenledger.Totals) []string {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		g, gok := got[n]
		w, wok := want[n]
		if g != w || gok != wok {
			out = append(out, fmt.Sprintf("%s %q: got %+v (reported: %v), want %+v (expected: %v)", kind, n, g, gok, w, wok))
		}
	}
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// sameDay compares every counter of two days, models included (nil and
// empty model maps are the same).
func sameDay(a, b tokenledger.Day) bool {
	for _, d := range []*tokenledger.Day{&a, &b} {
		if d.Models == nil {
			d.Models = map[string]tokenledger.Totals{}
		}
		d.Users = nil
	}
	return reflect.DeepEqual(a, b)
}

func dayString(d tokenledger.Day) string {
	models := d.Models
	d.Models, d.Users = nil, nil
	return fmt.Sprintf("%+v models=%v", d, models)
}

// ---------------------------------------------------------------------------
// Exactly once, with unacknowledged events

// claimed reports, for each event, whether the database at db holds its
// claim (its field in its claim hash "<prefix>:{<day>}:ids:<b>", or its key
// "<prefix>:{<day>}:id:<id>", docs/redis.md "Claims"): whether it has been
// counted. It reads Redis directly, so the answer does not depend on the
// script; only the claim's name is store/redis's.
func claimed(t testing.TB, db *redistest.Instance, prefix string, events []event) []bool {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: db.Addr()})
	defer rc.Close()
	return claimedOn(t, rc, prefix, events)
}

// claimedOn is claimed on any client, such as a cluster's.
func claimedOn(t testing.TB, rc redis.UniversalClient, prefix string, events []event) []bool {
	t.Helper()
	keys, err := tlredis.NewKeys(prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, len(events))
	for i := 0; i < len(events); i += 1000 {
		chunk := events[i:min(i+1000, len(events))]
		olds := make([]*redis.IntCmd, len(chunk))
		fields := make([]*redis.BoolCmd, len(chunk))
		_, err := rc.Pipelined(context.Background(), func(p redis.Pipeliner) error {
			for j, e := range chunk {
				old, bucket, field := keys.Claim(e.date(), e.ID)
				olds[j] = p.Exists(context.Background(), old)
				if field != "" {
					fields[j] = p.HExists(context.Background(), bucket, field)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read claims from Redis: %v", err)
		}
		for j, c := range olds {
			out[i+j] = c.Val() == 1 || (fields[j] != nil && fields[j].Val())
		}
	}
	return out
}

// checkExactlyOnce proves that the database behind url (Redis at db, keys
// under prefix) holds every acknowledged event exactly once, and each
// unacknowledged one at most once. Call it once the spool has drained.
//
//  1. It reads what tokenledger reports (before).
//  2. It asks Redis which events are claimed: every acknowledged one must
//     be (none lost); the claimed unacknowledged ones are those a request
//     counted although its answer never arrived.
//  3. before must equal, in every total, day, model, user and unique count,
//     exactly the acknowledged events plus the claimed unacknowledged ones:
//     nothing lost, nothing counted twice, nothing stray.
//  4. It sends every unacknowledged event again, with its id, and the
//     totals must then equal all events exactly.
func checkExactlyOnce(t testing.TB, url string, db *redistest.Instance, prefix string, days int, o *outcome) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: db.Addr()})
	defer rc.Close()
	checkExactlyOnceOn(t, url, rc, prefix, days, o)
}

// checkExactlyOnceOn is checkExactlyOnce with the claims read through rc,
// such as a cluster's client.
func checkExactlyOnceOn(t testing.TB, url string, rc redis.UniversalClient, prefix string, days int, o *outcome) {
	t.Helper()
	before := read(t, url, days)

	lost := 0
	for i, ok := range claimedOn(t, rc, prefix, o.acked) {
		if !ok {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged event %s (day %s) is not in the database", o.acked[i].ID, o.acked[i].date())
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events are not in the database", lost, len(o.acked))
	}
	var countedAnyway []event
	for i, ok := range claimedOn(t, rc, prefix, o.unacked) {
		if ok {
			countedAnyway = append(countedAnyway, o.unacked[i])
		}
	}
	t.Logf("%d events acknowledged, %d not (%d of those were counted anyway)", len(o.acked), len(o.unacked), len(countedAnyway))
	newLedger(o.acked, countedAnyway).check(t, before)

	for i := 0; i < len(o.unacked); i += 1000 {
		resend(t, url, o.unacked[i:min(i+1000, len(o.unacked))])
	}
	waitDrained(t, url, 60*time.Second)
	newLedger(o.acked, o.unacked).check(t, read(t, url, days))
}

// resend posts events until they are answered 200 (a 503 is retried: the
// same ids count once), within 60 s.
func resend(t testing.TB, url string, events []event) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, a, err := post(context.Background(), url, events)
		if err == nil && status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-sending %d events: %d %+v %v", len(events), status, a, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
