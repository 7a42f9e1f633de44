package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRepairThatFailsLosesNothing: when Repair cannot write the readable
// lines of a damaged journal (here the file size limit makes the write
// fail; a crash at that moment leaves the same state), the damaged journal
// is still in place under its name: the store still refuses to open
// rather than opening without those acknowledged events, and a second
// Repair keeps them. The limit is set in a child process: it is
// process-wide, and would also fail the test framework's own writes.
func TestRepairThatFailsLosesNothing(t *testing.T) {
	a, b := corruptionEvents()
	path := tempPath(t)
	j := healthy(t, path, a, b)
	data := readFile(t, j)
	data[lineStart(data, 2)+3] ^= 1 // line 2 of 3 damaged; lines 1 and 3 readable
	writeFile(t, j, data)
	const readable = 30 + 2*4

	c := startChild(t, "repair-under-fsize-limit", "FILESTORE_PATH="+path)
	line := c.waitLine(t, "repair ")
	_ = c.cmd.Wait()
	movedN, failed := strings.CutPrefix(line, "repair failed, moved ")
	if !failed {
		t.Fatalf("Repair under a 100-byte file size limit: %s; the test cannot show anything", line)
	}
	if movedN != "0" {
		t.Errorf("the failed Repair reports moving %s files, want nothing moved", movedN)
	}
	if got := readFile(t, j); string(got) != string(data) {
		t.Errorf("the failed Repair changed the damaged journal")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp-*")); len(left) != 0 {
		t.Errorf("the failed Repair left temp files: %v", left)
	}
	if _, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open after the failed Repair: %v, want the journal still refused", err)
	}

	moved, err := Repair(path)
	if err != nil || len(moved) != 1 {
		t.Fatalf("second Repair: moved %v, %v; want the journal kept aside", moved, err)
	}
	if kept := readFile(t, moved[0]); string(kept) != string(data) {
		t.Errorf("%s does not hold the damaged journal as it was", moved[0])
	}
	if _, err := os.Stat(j); err != nil {
		t.Fatalf("the journal's name holds nothing after Repair: %v", err)
	}
	s, err := Open(path, Options{Version: 1, Now: clockAt(fixedNow), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := requestCount(allDays(t, s, fixedNow, 90)); n != readable {
		t.Errorf("after Repair the store counts %d events, want the %d readable ones", n, readable)
	}
}

func init() {
	// The child of TestRepairThatFailsLosesNothing: Repair under a file
	// size limit of 100 bytes, too small for the readable lines.
	childModes["repair-under-fsize-limit"] = func(path string) {
		var old syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			fmt.Println("repair could not read the limit:", err)
			return
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 100, Max: old.Max}); err != nil {
			fmt.Println("repair could not set the limit:", err)
			return
		}
		moved, err := Repair(path)
		if err == nil {
			fmt.Printf("repair succeeded, moved %d\n", len(moved))
			return
		}
		fmt.Printf("repair failed, moved %d\n", len(moved))
	}
}
