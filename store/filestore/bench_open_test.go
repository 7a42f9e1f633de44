package filestore

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// benchDays yields n events over the 91 days ending at now, as
// writeBenchFile lays them out (20 models, 1000 users, 5000 sessions).
func benchDays(n int, now time.Time) iter.Seq2[tokenledger.Date, []tokenledger.Event] {
	return func(yield func(tokenledger.Date, []tokenledger.Event) bool) {
		today := tokenledger.DateOf(now)
		const days = 91
		k := 0
		for d := range days {
			date := today.AddDays(d - days + 1)
			per := n / days
			if d < n%days {
				per++
			}
			evs := make([]tokenledger.Event, per)
			for i := range evs {
				evs[i] = tokenledger.Event{
					ID: fmt.Sprintf("bench-%d", k), Timestamp: date.Time().Add(time.Duration(k%86400) * time.Second),
					Model: fmt.Sprintf("model-%02d", k%20), UserID: fmt.Sprintf("user-%d", k%1000), SessionID: fmt.Sprintf("sess-%d", k%5000),
					PromptTokens: int64(k%2000 + 1), CompletionTokens: int64(k % 700), TotalTokens: int64(k%2000 + 1 + k%700),
					Cost: tokenledger.Nanos(k%100_000 + 1),
				}
				k++
			}
			if !yield(date, evs) {
				return
			}
		}
	}
}

func init() { childModes["open-measure"] = openMeasure }

// openMeasure is the child of BenchmarkOpenVersions: it opens the store,
// prints the seconds and its peak RSS, logs one event, closes, and prints
// the seconds of the close and the bytes it wrote (/proc/self/io wchar).
func openMeasure(path string) {
	now, _ := strconv.ParseInt(os.Getenv("FILESTORE_NOW"), 10, 64)
	version, _ := strconv.Atoi(os.Getenv("FILESTORE_VERSION"))
	clock := clockAt(time.Unix(now, 0).UTC())
	start := time.Now()
	s, err := Open(path, Options{Now: clock, Logger: discard, Version: version})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("open %f %d\n", time.Since(start).Seconds(), procStatus("VmHWM:"))
	if _, err := s.Add(context.Background(), storetest.Batch([]tokenledger.Event{{ID: "one-more", Timestamp: clock(), Model: "m", TotalTokens: 1}})); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	w0 := procIO("wchar:")
	start = time.Now()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	fmt.Printf("close %f %d\n", time.Since(start).Seconds(), procIO("wchar:")-w0)
}

// procStatus returns a field of /proc/self/status in bytes (it is in kB).
func procStatus(field string) int64 { return procField("/proc/self/status", field) * 1024 }

// procIO returns a field of /proc/self/io.
func procIO(field string) int64 { return procField("/proc/self/io", field) }

func procField(file, field string) int64 {
	b, _ := os.ReadFile(file)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			v, _ := strconv.ParseInt(strings.Fields(line[len(field):])[0], 10, 64)
			return v
		}
	}
	return -1
}

// bench10M adds 10^7 events to BenchmarkOpenVersions: "both" versions, or
// "v2" alone (scripts/bench.sh: version 1 at 10^7 is its serve row).
var bench10M = flag.String("bench-file-10m", "", `also open 10^7 events: "both" or "v2"`)

// BenchmarkOpenVersions opens a store of 10^6 events (and of 10^7 with
// -bench-file-10m) written in version 1 and read by the kept version 1
// path, and the same events in version 2, each in a child
// process: seconds to open, the child's peak RSS, and the seconds and bytes
// of a clean stop after one more event. The files are written directly
// (WriteFile, WriteFile2), as a compaction or a checkpoint writes them.
func BenchmarkOpenVersions(b *testing.B) {
	sizes := []int{1_000_000}
	if *bench10M != "" {
		sizes = append(sizes, 10_000_000)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range sizes {
		for _, version := range []int{1, 2} {
			if n > 1_000_000 && version == 1 && *bench10M != "both" {
				continue
			}
			b.Run(fmt.Sprintf("v%d-%dM", version, n/1_000_000), func(b *testing.B) {
				var open, peak, closeS, written float64
				for b.Loop() {
					b.StopTimer()
					path := filepath.Join(b.TempDir(), "token_usage.json")
					write := WriteFile
					if version == 2 {
						write = WriteFile2
					}
					if err := write(path, now, benchDays(n, now)); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					c := startChild(b, "open-measure", "FILESTORE_PATH="+path, fmt.Sprintf("FILESTORE_NOW=%d", now.Unix()), fmt.Sprintf("FILESTORE_VERSION=%d", version))
					var o, p, cs, w float64
					for line := range c.lines {
						f := strings.Fields(line)
						switch {
						case len(f) == 3 && f[0] == "open":
							o, _ = strconv.ParseFloat(f[1], 64)
							p, _ = strconv.ParseFloat(f[2], 64)
						case len(f) == 3 && f[0] == "close":
							cs, _ = strconv.ParseFloat(f[1], 64)
							w, _ = strconv.ParseFloat(f[2], 64)
						}
					}
					if err := c.cmd.Wait(); err != nil || o == 0 {
						b.Fatalf("child: %v %s", err, c.stderr)
					}
					open, peak, closeS, written = open+o, max(peak, p), closeS+cs, written+w
				}
				k := float64(b.N)
				b.ReportMetric(open/k, "s/open")
				b.ReportMetric(peak/(1<<20), "MiB-peak-RSS")
				b.ReportMetric(closeS/k, "s/close")
				b.ReportMetric(written/k/(1<<20), "MiB-written/close")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
