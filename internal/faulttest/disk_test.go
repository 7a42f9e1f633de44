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
)

// mountTmpfs mounts a tmpfs of size (such as "2m") on a new directory and
// unmounts it when t ends. Without permission to mount it skips, unless
// TOKENLEDGER_REQUIRE_MOUNT is set (.ci/run sets it).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		msg := "cannot mount a tmpfs (needs root): " + strings.TrimSpace(string(out))
		if os.Getenv("TOKENLEDGER_REQUIRE_MOUNT") != "" {
			t.Fatalf("TOKENLEDGER_REQUIRE_MOUNT is set but %s", msg)
		}
		t.Skip(msg)
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

// TestFullDisk runs serve on a usage file in a small tmpfs that fills up:
// writes answer 503 with a sentence
// naming the disk and store nothing; reads keep working; once space is
// freed (or the mount is writable again) logging resumes without a
// restart; and a restart opens the file with every acknowledged event,
// none twice.
func TestFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "3m")
	env := map[string]string{"TOKENLEDGER_FILE": filepath.Join(dir, "token_usage.json")}
	srv := startServe(t, "disk", env)
	events := genEvents("disk", 40_000, 3, 7)
	acked := newLedger()
	next := 0
	// send posts the next batch of 50 events and returns the status and
	// the error message; acknowledged events go into the ledger.
	send := func() (int, string) {
		t.Helper()
		batch := events[next:min(next+50, len(events))]
		status, a, err := post(context.Background(), srv.url, batch)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		if status == 200 {
			for _, e := range batch {
				acked.add(e)
			}
			next += len(batch)
		}
		return status, a.Error
	}
	for range 20 {
		if status, msg := send(); status != 200 {
			t.Fatalf("before filling the disk: %d %s", status, msg)
		}
	}
	for _, c := range []struct {
		name      string
		break_    func()
		repair    func()
		wantWords string
	}{
		{"full", func() { fill(t, filepath.Join(dir, "filler"), 8<<10) }, func() { os.Remove(filepath.Join(dir, "filler")) }, "full"},
	} {
		c.break_()
		var status int
		var msg string
		for range 200 { // until the room left is used up
			if status, msg = send(); status != 200 {
				break
			}
		}
		if status != 503 || !strings.Contains(strings.ToLower(msg), c.wantWords) || strings.Count(msg, ". ") > 0 {
			t.Errorf("%s: a write answered %d %q, want 503 with one sentence saying the disk is %s", c.name, status, msg, c.wantWords)
		}
		for range 3 { // the same again: still refused, nothing counted
			if s, m := send(); s != 503 {
				t.Errorf("%s: a second write answered %d %q", c.name, s, m)
			}
		}
		acked.check(t, read(t, srv.url, 3)) // reads keep working, and hold exactly the acknowledged events
		c.repair()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, m := send()
			if s == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after the disk was repaired writes still answer %d %q", c.name, s, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for range 5 {
			if s, m := send(); s != 200 {
				t.Fatalf("%s: after the repair: %d %q", c.name, s, m)
			}
		}
		acked.check(t, read(t, srv.url, 3))
	}
	srv.stop(t)
	srv = startServe(t, "disk-again", env)
	acked.check(t, read(t, srv.url, 3))
	if strings.Contains(srv.log(), "corrupt") {
		t.Errorf("the restart found a corrupt file:\n%s", srv.log())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "token_usage.json.tmp-*")); len(left) > 0 {
		t.Errorf("a compaction's temporary file was left behind: %v", left)
	}

}
