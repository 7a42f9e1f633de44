//go:build linux

package faulttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// cannotMount skips t with why, or fails it when TOKENLEDGER_REQUIRE_MOUNT
// is set (.ci/run sets it).
func cannotMount(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("TOKENLEDGER_REQUIRE_MOUNT") != "" {
		t.Fatalf("TOKENLEDGER_REQUIRE_MOUNT is set but %s", why)
	}
	t.Skip(why)
}

// mountTmpfs mounts a tmpfs of size (such as "2m") on a new directory and
// unmounts it when t ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		cannotMount(t, "cannot mount a tmpfs (needs root): "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file at path until the filesystem has at most room bytes
// free.
func fill(t *testing.T, path string, room uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free <= room {
		return
	}
	if err := os.WriteFile(path, make([]byte, free-room), 0o644); err != nil && !strings.Contains(err.Error(), "no space") {
		t.Fatal(err)
	}
}

// batchSender posts the next 50 of its events to a server and keeps the
// acknowledged ones in a ledger.
type batchSender struct {
	t      *testing.T
	url    string
	events []event
	next   int
	acked  *ledger
}

func newBatchSender(t *testing.T, url, prefix string) *batchSender {
	return &batchSender{t: t, url: url, events: genEvents(prefix, 40_000, 3, 7), acked: newLedger()}
}

// send posts the next batch and returns the status and the error message.
func (b *batchSender) send() (int, string) {
	b.t.Helper()
	batch := b.events[b.next:min(b.next+50, len(b.events))]
	status, a, err := post(context.Background(), b.url, batch)
	if err != nil {
		b.t.Fatalf("POST: %v", err)
	}
	if status == 200 {
		for _, e := range batch {
			b.acked.add(e)
		}
		b.next += len(batch)
	}
	return status, a.Error
}

// sendOK sends n batches, each of which must be acknowledged.
func (b *batchSender) sendOK(n int, when string) {
	b.t.Helper()
	for range n {
		if status, msg := b.send(); status != 200 {
			b.t.Fatalf("%s: %d %s", when, status, msg)
		}
	}
}

// refused sends until a write is refused (the room left is used up) and
// checks that it, and three more, answer 503 with one sentence holding
// every one of words.
func (b *batchSender) refused(words ...string) {
	b.t.Helper()
	var status int
	var msg string
	for range 200 {
		if status, msg = b.send(); status != 200 {
			break
		}
	}
	lower := strings.ToLower(msg)
	for _, w := range words {
		if status != 503 || !strings.Contains(lower, w) || strings.Count(msg, ". ") > 0 {
			b.t.Fatalf("a write answered %d %q, want 503 with one sentence saying %q", status, msg, words)
		}
	}
	for range 3 { // the same again: still refused, nothing counted
		if s, m := b.send(); s != 503 {
			b.t.Errorf("a second write answered %d %q", s, m)
		}
	}
}

// resumes waits up to 10 s for a write to be acknowledged again, then
// sends five more that must be.
func (b *batchSender) resumes(when string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, m := b.send()
		if s == 200 {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: writes still answer %d %q", when, s, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.sendOK(5, when)
}

// TestFullDisk runs serve on a usage file in a small tmpfs that fills up:
// writes answer 503 with a sentence naming the full disk and store
// nothing; reads keep working; once space is freed logging resumes
// without a restart; and a restart opens the file with every acknowledged
// event, none twice.
func TestFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "3m")
	env := map[string]string{"TOKENLEDGER_FILE": filepath.Join(dir, "token_usage.json")}
	srv := startServe(t, "disk", env)
	b := newBatchSender(t, srv.url, "disk")
	b.sendOK(20, "before filling the disk")
	fill(t, filepath.Join(dir, "filler"), 8<<10)
	b.refused("full")
	b.acked.check(t, read(t, srv.url, 3)) // reads keep working, and hold exactly the acknowledged events
	os.Remove(filepath.Join(dir, "filler"))
	b.resumes("after space was freed")
	b.acked.check(t, read(t, srv.url, 3))
	srv.stop(t)
	srv = startServe(t, "disk-again", env)
	b.acked.check(t, read(t, srv.url, 3))
	if strings.Contains(srv.log(), "corrupt") {
		t.Errorf("the restart found a corrupt file:\n%s", srv.log())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "token_usage.json.tmp-*")); len(left) > 0 {
		t.Errorf("a compaction's temporary file was left behind: %v", left)
	}
}

// TestFullSpoolDisk runs serve on Redis with its spool in a small tmpfs:
// with Redis killed, events go to the spool until its disk is full; then
// writes answer 503 with a sentence naming the spool's full disk; once
// space is freed the spool takes events again without a restart, and once
// Redis is back every acknowledged event is counted exactly once.
func TestFullSpoolDisk(t *testing.T) {
	db := redistest.Server(t, aofArgs...)
	dir := mountTmpfs(t, "3m")
	env := redisEnv(db, "spooldisk", dir)
	env["TOKENLEDGER_DB_TIMEOUT"] = "500ms"
	srv := startServe(t, "spooldisk", env)
	b := newBatchSender(t, srv.url, "spooldisk")
	b.sendOK(5, "with Redis up")
	db.Kill(t)
	b.sendOK(5, "with Redis down (into the spool)")
	fill(t, filepath.Join(dir, "filler"), 8<<10)
	b.refused("full", "spool")
	os.Remove(filepath.Join(dir, "filler"))
	b.resumes("after space was freed on the spool's disk")
	db.Restart(t)
	waitDrained(t, srv.url, 30*time.Second)
	b.acked.check(t, read(t, srv.url, 3))
	srv.stop(t)
	srv = startServe(t, "spooldisk-again", env)
	b.acked.check(t, read(t, srv.url, 3))
}
