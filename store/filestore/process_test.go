package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// childModes are helper modes that do not open the store first, by name;
// files for one platform add theirs.
var childModes = map[string]func(path string){}

// TestHelperProcess is not a test: it is the body of the child processes
// the tests below start (the test binary re-executed with helperEnv set).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("only runs as a child process of another test")
	}
	path := os.Getenv("FILESTORE_PATH")
	fail := func(code int, format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(code)
	}
	if run := childModes[mode]; run != nil {
		run(path)
		os.Exit(0)
	}
	compact, _ := strconv.ParseInt(os.Getenv("FILESTORE_COMPACT"), 10, 64)
	version, _ := strconv.Atoi(os.Getenv("FILESTORE_VERSION"))
	if os.Getenv("FILESTORE_SNAPSHOT_HOOK") == "1" {
		snapshotHook = stopAtSnapshot
	}
	s, err := Open(path, Options{Now: clockAt(fixedNow), Logger: discard, CompactBytes: compact, Version: version})
	if err != nil {
		fail(2, "open: %v", err)
	}
	ctx := context.Background()
	switch mode {
	case "hold-lock":
		fmt.Println("locked")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	case "write-no-close":
		evs := noCloseEvents()
		for i := 0; i < len(evs); i += 9 {
			if _, err := s.Add(ctx, storetest.Batch(evs[i:min(i+9, len(evs))])); err != nil {
				fail(3, "add: %v", err)
			}
		}
		fmt.Println("done")
	case "reset-no-close":
		before, after := resetEvents()
		if _, err := s.Add(ctx, storetest.Batch(before)); err != nil {
			fail(3, "add: %v", err)
		}
		if err := s.Reset(ctx); err != nil {
			fail(3, "reset: %v", err)
		}
		if _, err := s.Add(ctx, storetest.Batch(after)); err != nil {
			fail(3, "add: %v", err)
		}
		fmt.Println("done")
	case "crash-writer":
		round, _ := strconv.Atoi(os.Getenv("FILESTORE_ROUND"))
		crashWriter(s, round, os.Getenv("FILESTORE_RESET") == "1", fail)
	default:
		fail(2, "unknown helper mode %q", mode)
	}
	// Exit without Close, as a crash would: the lock goes with the process.
	os.Exit(0)
}

// crashWriter adds events from 8 goroutines until it is killed, printing
// "ack <id>… ;" for every batch Add acknowledged. Every few batches it
// re-sends an acknowledged event, which must be a duplicate. With reset,
// it also calls Reset once, at a random moment, printing "reset-begin ;"
// and "reset-done ;" around it; events whose Add began after the reset
// returned have round*10+1 in their id, the others round*10.
func crashWriter(s *Store, round int, reset bool, fail func(int, string, ...any)) {
	var out sync.Mutex
	var gen, began atomic.Int64
	print := func(line string) {
		out.Lock()
		_, _ = os.Stdout.WriteString(line + " ;\n")
		out.Unlock()
	}
	fmt.Println("ready")
	if reset {
		go func() {
			time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
			began.Store(1)
			print("reset-begin")
			if err := s.Reset(context.Background()); err != nil {
				fail(3, "reset: %v", err)
			}
			gen.Store(1)
			print("reset-done")
		}()
	}
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				n := 1 + i%4
				if w == 0 {
					n = 20 // one writer sends larger batches
				}
				g := int(gen.Load())
				evs := make([]tokenledger.Event, n)
				for k := range n {
					evs[k] = crashEvent(fmt.Sprintf("c%d-%d-%d-%d", round*10+g, w, i, k))
				}
				r, err := s.Add(context.Background(), storetest.Batch(evs))
				if err != nil {
					fail(3, "add: %v", err)
				}
				line := "ack"
				for k, isNew := range r.New {
					if !isNew {
						fmt.Printf("BUG a new event %s was reported as a duplicate;\n", evs[k].ID)
						os.Exit(4)
					}
					line += " " + evs[k].ID
				}
				print(line)
				if i%5 == 4 {
					r, err := s.Add(context.Background(), storetest.Batch(evs[:1]))
					if err != nil {
						fail(3, "add: %v", err)
					}
					// After a Reset the same id is new again, so the
					// check holds only when the (single) Reset had
					// returned before the first Add began, or has not
					// begun yet.
					if r.Accepted() != 0 && (g == 1 || began.Load() == 0) {
						fmt.Printf("BUG an acknowledged event %s was counted again;\n", evs[0].ID)
						os.Exit(4)
					}
				}
			}
		}()
	}
	select {}
}

// crashEvent returns the event with the given crash-writer id
// "c<round>-<worker>-<i>-<k>"; its fields follow from the numbers, so the
// parent can check what was stored.
func crashEvent(id string) tokenledger.Event {
	var round, w, i, k int
	if _, err := fmt.Sscanf(id, "c%d-%d-%d-%d", &round, &w, &i, &k); err != nil {
		panic(fmt.Sprintf("bad crash event id %q", id))
	}
	n := round*1_000_003 + w*10_007 + i*31 + k
	e := tokenledger.Event{
		ID:        id,
		Timestamp: fixedNow.Add(-time.Duration(n%3) * 24 * time.Hour).Add(-time.Duration(n%1000) * time.Second),
		Model:     fmt.Sprintf("m%d", n%4), UserID: fmt.Sprintf("u%d", n%13), SessionID: fmt.Sprintf("s%d", n%17),
		PromptTokens: int64(n%500 + 1), CompletionTokens: int64(n % 77), Cost: tokenledger.Nanos(n % 100_000),
	}
	e.TotalTokens = e.PromptTokens + e.CompletionTokens
	return e
}

// TestCrashRecovery kills a writer process with SIGKILL at seeded random
// moments, and every fourth round the moment a compaction's output
// appears, many times — during group commits, compactions and the
// conversion of an original-format file — and after each kill checks that the files are
// readable, that every acknowledged event is counted exactly once, and
// that the aggregates match the events on disk.
func TestCrashRecovery(t *testing.T) { crashRecovery(t, 1) }

// crashRecovery is TestCrashRecovery on a store of the given version. In
// version 2 the chosen kill lands between a snapshot's fsync and its
// rename, after its id index was written.
func crashRecovery(t *testing.T, version int) {
	rounds := 12
	if raceEnabled {
		rounds = 7
	}
	if testing.Short() {
		rounds = 3
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TOKENLEDGER_CRASH_SEED"); v != "" { // replay a run
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TOKENLEDGER_CRASH_SEED=%q is not a seed", v)
		}
	}
	t.Logf("seed %d (TOKENLEDGER_CRASH_SEED=%d replays the kill times)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	path := tempPath(t)
	// Start from the original service's file, so that an early kill can
	// land in the middle of its conversion.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, readFile(t, filepath.Join(fixtureDir, "token_usage.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	midCompaction, resets, total := 0, 0, 0
	// Rounds go on past the planned number (up to 10 more) until a kill
	// has landed in the middle of a compaction.
	round := 0
	for ; round < rounds || (midCompaction == 0 && round < rounds+10); round++ {
		// Every third round also resets the store at a random moment.
		reset := round%3 == 2
		chosen := round%4 == 1
		c := startChild(t, "crash-writer", "FILESTORE_PATH="+path, "FILESTORE_ROUND="+strconv.Itoa(round), "FILESTORE_COMPACT=16384",
			"FILESTORE_RESET="+map[bool]string{true: "1"}[reset], "FILESTORE_VERSION="+strconv.Itoa(version),
			"FILESTORE_SNAPSHOT_HOOK="+map[bool]string{true: "1"}[chosen && version == 2])
		var lines []string
		atHook := false // a migration at Open may reach the snapshot first
		if chosen && version == 2 {
			for l := range c.lines {
				if atHook = l == "snapshot-hook ;"; atHook || l == "ready" {
					break
				}
			}
		} else {
			c.waitLine(t, "ready")
		}
		if !atHook && round%3 != 0 {
			// Most kills come after the first acknowledgement; the
			// others may land in the child's start-up, e.g. while it
			// converts the original file.
			for l := range c.lines {
				lines = append(lines, l)
				atHook = l == "snapshot-hook ;"
				if atHook || strings.HasPrefix(l, "ack ") {
					break
				}
			}
		}
		if chosen && version == 2 {
			// The child stops in its next snapshot, between fsync and
			// rename, and says so.
			for !atHook {
				l, ok := <-c.lines
				if !ok {
					break
				}
				lines = append(lines, l)
				atHook = l == "snapshot-hook ;"
			}
			if atHook {
				midCompaction++
			}
		} else if chosen {
			// A kill chosen to land in a compaction: the moment its
			// output file appears.
			deadline := time.Now().Add(10 * time.Second)
			for tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) == 0 && time.Now().Before(deadline); tmps, _ = filepath.Glob(path + ".tmp-*") {
				time.Sleep(200 * time.Microsecond)
			}
		} else {
			time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		}
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		for l := range c.lines {
			lines = append(lines, l)
		}
		var roundAcked []string
		var resetBegan, resetDone bool
		for _, l := range lines {
			if strings.HasPrefix(l, "BUG") {
				t.Fatalf("round %d: %s", round, l)
			}
			// A line cut short by the kill has no " ;" end: its ids
			// are not counted as acknowledged.
			switch {
			case l == "reset-begin ;":
				resetBegan = true
			case l == "reset-done ;":
				resetDone = true
			case strings.HasPrefix(l, "ack ") && strings.HasSuffix(l, " ;"):
				roundAcked = append(roundAcked, strings.Fields(strings.TrimSuffix(strings.TrimPrefix(l, "ack "), " ;"))...)
			}
		}
		n := len(roundAcked)
		total += n
		var check func(onDisk map[string]bool)
		if resetBegan {
			// Reset is atomic: the events acknowledged before this round
			// are either all there (the kill came first) or all gone; once
			// Reset returned they are gone. Events of this round are
			// required only when their Add began after Reset returned.
			before := acked
			check = func(onDisk map[string]bool) {
				there := 0
				for id := range before {
					if onDisk[id] {
						there++
					}
				}
				if there != 0 && (there != len(before) || resetDone) {
					t.Fatalf("round %d: %d of %d events from before the reset are there (reset returned: %v); want all or none, none once it returned",
						round, there, len(before), resetDone)
				}
			}
			acked = map[string]bool{}
			resets++
		}
		for _, id := range roundAcked {
			if !resetBegan || strings.HasPrefix(id, fmt.Sprintf("c%d-", round*10+1)) {
				acked[id] = true
			}
		}
		if strings.Contains(c.stderr.String(), "add:") || strings.Contains(c.stderr.String(), "open:") {
			t.Fatalf("round %d: the writer failed:\n%s", round, c.stderr.String())
		}
		// A compaction's unfinished output left behind shows the kill
		// landed in the middle of one.
		if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) > 0 && version == 1 {
			midCompaction++
		}
		t.Logf("round %d: %d events acknowledged before the kill (reset began %v, returned %v)", round, n, resetBegan, resetDone)
		verifyAfterCrash(t, path, version, acked, check)
	}
	if total == 0 {
		t.Fatal("no event was acknowledged in any round; the test tested nothing")
	}
	t.Logf("%d rounds, %d with a reset; %d kills interrupted a compaction", round, resets, midCompaction)
	if midCompaction == 0 {
		t.Errorf("no kill interrupted a compaction in %d rounds; the test did not test that", rounds)
	}
}

// verifyAfterCrash checks the files at path against the acknowledged ids;
// check, when not nil, also sees the ids on disk.
func verifyAfterCrash(t *testing.T, path string, version int, acked map[string]bool, check func(onDisk map[string]bool)) {
	t.Helper()
	var onDisk []tokenledger.Event
	res, err := Scan(path, ScanOptions{Now: clockAt(fixedNow)}, func(evs []tokenledger.Event) error {
		onDisk = append(onDisk, evs...)
		return nil
	})
	if err != nil {
		t.Fatalf("after a kill the files cannot be read: %v", err)
	}
	if res.Format == FormatTokenledger && res.Duplicates != 0 {
		t.Errorf("after a kill the files hold %d duplicate events (a folded journal replayed?)", res.Duplicates)
	}
	ids := make(map[string]bool, len(onDisk))
	for _, e := range onDisk {
		ids[e.ID] = true
		if strings.HasPrefix(e.ID, "c") {
			if want := crashEvent(e.ID); !reflect.DeepEqual(e, want) {
				t.Fatalf("stored event differs from what was written:\n got  %+v\n want %+v", e, want)
			}
		}
	}
	if check != nil {
		check(ids)
	}
	var lost []string
	var ackedEvents []tokenledger.Event
	for id := range acked {
		if !ids[id] {
			lost = append(lost, id)
		}
		ackedEvents = append(ackedEvents, crashEvent(id))
	}
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged events are lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}

	s := mustOpen(t, path, Options{CompactBytes: 16384, Version: version})
	sameDays(t, "aggregates after a kill", allDays(t, s, fixedNow, 90), referenceDays(t, fixedNow, 90, onDisk))
	if version == 2 {
		// Day files written before a kill that came ahead of their
		// manifest's rename are gone; those it names are there.
		onDiskDays, _ := filepath.Glob(path + ".day-*")
		named := map[string]bool{}
		for d, f := range s.dayFiles {
			named[dayFileName(path, d, f.gen)] = true
		}
		for _, name := range onDiskDays {
			if !named[name] {
				t.Errorf("after a kill and a start, day file %s is left that the manifest does not name", name)
			}
		}
		if len(onDiskDays) != len(named) {
			t.Errorf("the manifest names %d day files, %d are on disk", len(named), len(onDiskDays))
		}
	}
	r, err := s.Add(context.Background(), storetest.Batch(ackedEvents))
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted() != 0 {
		t.Fatalf("re-adding the %d acknowledged events counted %d again", len(ackedEvents), r.Accepted())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLockHeldByAnotherProcess: while another process has the file open,
// Open and Repair refuse with one sentence naming the file and the way
// out; once it is gone, Open works.
func TestLockHeldByAnotherProcess(t *testing.T) {
	path := tempPath(t)
	c := startChild(t, "hold-lock", "FILESTORE_PATH="+path)
	c.waitLine(t, "locked")

	_, err := Open(path, Options{Logger: discard})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds the file: err = %v, want ErrLocked", err)
	}
	msg := err.Error()
	for _, want := range []string{path, "another tokenledger process", "stop that process or use another file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one sentence", msg)
	}
	if _, err := Repair(path); !errors.Is(err, ErrLocked) {
		t.Errorf("Repair while another process holds the file: err = %v, want ErrLocked", err)
	}

	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	s, err := Open(path, Options{Logger: discard})
	if err != nil {
		t.Fatalf("Open after the other process ended: %v", err)
	}
	s.Close()
}

// TestSecondOpenInProcess: a second Store on the same file is refused too,
// and the file can be opened again once the first is closed.
func TestSecondOpenInProcess(t *testing.T) {
	path := tempPath(t)
	s := mustOpen(t, path, Options{})
	if _, err := Open(path, Options{Logger: discard}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path, Options{})
	s.Close()
}
