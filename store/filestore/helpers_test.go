package filestore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// discard drops log lines.
var discard = slog.New(slog.DiscardHandler)

// fixedNow is the clock most tests run on.
var fixedNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func clockAt(t time.Time) tokenledger.Clock { return func() time.Time { return t } }

// tempPath returns a usage file path inside a new temp directory, in a
// "logs" folder that does not exist yet.
func tempPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "logs", "token_usage.json")
}

// mustOpen opens path with the fixed clock unless o sets one.
func mustOpen(t *testing.T, path string, o Options) *Store {
	t.Helper()
	if o.Now == nil {
		o.Now = clockAt(fixedNow)
	}
	if o.Logger == nil {
		o.Logger = discard
	}
	if o.Version == 0 {
		o.Version = 1 // most tests here are of version 1; version2_test.go sets 2
	}
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

// testEvent builds a deterministic event from n: its day is n%days days
// before now.
func testEvent(prefix string, n, days int, now time.Time) tokenledger.Event {
	ts := now.Add(-time.Duration(n%days) * 24 * time.Hour).Add(-time.Duration(n%3600) * time.Second)
	e := tokenledger.Event{
		ID: fmt.Sprintf("%s-%d", prefix, n), Timestamp: ts.UTC(),
		Model: fmt.Sprintf("model-%d", n%5), UserID: fmt.Sprintf("user-%d", n%17), SessionID: fmt.Sprintf("sess-%d", n%29),
		PromptTokens: int64(n%1000 + 1), CompletionTokens: int64(n % 333),
		Cost: tokenledger.Nanos(n*1001 + 3), Pricing: tokenledger.PriceSource(n % 4), // every source, and none
	}
	e.CacheReadTokens = min(int64(n%7), e.PromptTokens)
	e.ReasoningTokens = min(int64(n%3), e.CompletionTokens)
	if n%11 == 0 {
		e.UserID, e.SessionID = "", ""
	}
	e.TotalTokens = e.PromptTokens + e.CompletionTokens + int64(n%2)
	return e
}

// allDays reads every day in the window ending at now, with users.
func allDays(t *testing.T, st tokenledger.Store, now time.Time, retention int) []tokenledger.Day {
	t.Helper()
	today := tokenledger.DateOf(now)
	days, err := st.Days(context.Background(), tokenledger.DayQuery{From: today.AddDays(-retention), To: today.AddDays(1), Users: true})
	if err != nil {
		t.Fatalf("Days: %v", err)
	}
	return days
}

// requestCount returns the requests of days, summed.
func requestCount(days []tokenledger.Day) int64 {
	var n int64
	for _, d := range days {
		n += d.RequestCount
	}
	return n
}

// referenceDays adds events to the reference memstore and returns its days.
func referenceDays(t *testing.T, now time.Time, retention int, events ...[]tokenledger.Event) []tokenledger.Day {
	t.Helper()
	m := memstore.New(clockAt(now), retention)
	for _, evs := range events {
		if _, err := m.Add(context.Background(), storetest.Batch(evs)); err != nil {
			t.Fatal(err)
		}
	}
	m.Prune()
	return allDays(t, m, now, retention)
}

// sameDays fails when got and want differ.
func sameDays(t *testing.T, what string, got, want []tokenledger.Day) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d days, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: day %s:\n got  %+v\n want %+v", what, want[i].Date, got[i], want[i])
		}
	}
}

// readFile returns the bytes of path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshotFiles returns the contents of every file in dir (not the lock),
// to check that something was left byte for byte unchanged.
func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		out[e.Name()] = string(readFile(t, filepath.Join(dir, e.Name())))
	}
	return out
}

// logBuffer is a slog handler target that tests can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// helperEnv names the environment variable that makes the test binary act
// as a child process (see TestHelperProcess).
const helperEnv = "FILESTORE_TEST_HELPER"

// child is a test binary re-executed as a helper process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
	done   chan struct{}
}

// startChild runs this test binary as helper mode with env (KEY=VALUE),
// streaming its stdout lines.
func startChild(t testing.TB, mode string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1<<16), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// waitLine waits for a line starting with prefix and returns it.
func (c *child) waitLine(t testing.TB, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("child ended before printing %q; stderr:\n%s", prefix, c.stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("child did not print %q within 60 s", prefix)
		}
	}
}

// appendJournalLine appends one journal line holding evs to dst, framed
// as the committer frames it.
func appendJournalLine(dst []byte, evs []tokenledger.Event) []byte {
	line, err := journal.AppendRecord(dst, appendBatch(nil, evs))
	if err != nil {
		panic(err)
	}
	return line
}

// castagnoli is the CRC-32C table, for tests that frame journal lines by
// hand, independently of store/internal/journal.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// events returns how many distinct events s counts.
func (s *Store) events() int {
	s.amu.RLock()
	defer s.amu.RUnlock()
	return s.agg.Events()
}

// syncCount returns how many journal fsyncs s has made.
func (s *Store) syncCount() int64 {
	s.wmu.RLock()
	defer s.wmu.RUnlock()
	s.omu.Lock()
	defer s.omu.Unlock()
	n := s.syncs.Load()
	if s.w != nil {
		n += s.w.Syncs()
	}
	return n
}
