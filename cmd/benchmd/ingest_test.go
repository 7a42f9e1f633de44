package main

import (
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/loadgen"
)

// TestIngestRow: the target row takes, per number of clients, the median
// round of the batches of 1,000 (and that round's CPU), ignores other
// batch sizes, and is met only by a median of 150,000 whose rounds all
// verified.
func TestIngestRow(t *testing.T) {
	run := func(batch, clients int, rate float64, ok bool, serverCPU float64) benchRun {
		return benchRun{
			res: loadgen.Result{Batch: batch, Clients: clients, EventsPerSec: rate, Events: 1_000_000, Verify: &loadgen.Verification{OK: ok}},
			cpu: map[string]float64{"server": serverCPU, "redis": 6},
		}
	}
	row, ok := ingestRow([]benchRun{
		run(100, 16, 900_000, true, 1),
		run(1000, 4, 140_000, true, 4), run(1000, 4, 160_000, true, 5), run(1000, 4, 151_000, true, 4.5),
		run(1000, 8, 149_000, true, 1), run(1000, 8, 120_000, true, 1), run(1000, 8, 155_000, true, 1),
	})
	if !ok {
		t.Fatal("no row for batches of 1,000")
	}
	for _, want := range []string{"151,000 events/s at 4 clients, the median of 3 rounds (140,000, 160,000, 151,000; per event 4.5 µs of server CPU, 6.0 µs of Redis CPU)", "149,000 events/s at 8 clients", "**met**"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q does not say %q", row, want)
		}
	}
	if strings.Contains(row, "900,000") {
		t.Errorf("row %q counts the batches of 100", row)
	}
	row, _ = ingestRow([]benchRun{run(1000, 4, 160_000, true, 4), run(1000, 4, 170_000, false, 4), run(1000, 4, 100_000, true, 4)})
	if !strings.Contains(row, "**missed**") {
		t.Errorf("a median whose rounds did not all verify was met: %q", row)
	}
	row, _ = ingestRow([]benchRun{run(1000, 4, 149_999, true, 4)})
	if !strings.Contains(row, "**missed**") {
		t.Errorf("149,999 events/s was met: %q", row)
	}
	if _, ok := ingestRow([]benchRun{run(100, 16, 1, true, 1)}); ok {
		t.Error("a row without batches of 1,000")
	}
}
