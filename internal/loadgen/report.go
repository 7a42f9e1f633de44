package loadgen

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteText prints the result as a few aligned lines.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target      %s\n", r.Target)
	fmt.Fprintf(w, "requests    %s in %.2fs: %s requests/s\n", Thousands(r.Requests), r.Seconds, Thousands(int64(r.RequestsPerSec+0.5)))
	line := fmt.Sprintf("events      %s: %s events/s", Thousands(r.Events), Thousands(int64(r.EventsPerSec+0.5)))
	if r.Batch > 1 {
		line += fmt.Sprintf(" (%d per request)", r.Batch)
	}
	if r.ResentEvents > 0 {
		line += fmt.Sprintf(", %s of them re-sent ids", Thousands(r.ResentEvents))
	}
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "answers     %s accepted, %s duplicates\n", Thousands(r.Accepted), Thousands(r.Duplicates))
	fmt.Fprintf(w, "latency     p50 %s  p95 %s  p99 %s  max %s  (mean %s)\n",
		msText(r.Latency.P50), msText(r.Latency.P95), msText(r.Latency.P99), msText(r.Latency.Max), msText(r.Latency.Mean))
	fmt.Fprintf(w, "errors      %s\n", r.ErrorSummary())
	for _, k := range sortedKeys(r.ErrorLines) {
		if r.ErrorLines[k] != "" {
			fmt.Fprintf(w, "            %s, e.g.: %s\n", k, oneLine(r.ErrorLines[k]))
		}
	}
	if r.UnknownAfterLoad > 0 {
		fmt.Fprintf(w, "unknown     %s events had no clear answer; sent again: %s still unknown\n", Thousands(r.UnknownAfterLoad), Thousands(r.Unknown))
	}
	if r.Verify != nil {
		fmt.Fprintf(w, "verify      %s\n", r.Verify.Message)
		if !r.Verify.OK {
			for _, d := range r.Verify.Differences {
				fmt.Fprintf(w, "            %s\n", d)
			}
		}
	} else {
		fmt.Fprintln(w, "verify      skipped")
	}
}

// ErrorSummary is "none", or "12 (0.1 % of requests): 10 HTTP 503, 2 timeout".
func (r *Result) ErrorSummary() string {
	if r.ErrorCount == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if r.Errors[kinds[i]] != r.Errors[kinds[j]] {
			return r.Errors[kinds[i]] > r.Errors[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = Thousands(r.Errors[k]) + " " + k
	}
	share := 100 * float64(r.ErrorCount) / float64(max(r.Requests, 1))
	prec := 0
	if share < 10 {
		prec = 1
	}
	if share < 0.1 {
		prec = 3
	}
	return fmt.Sprintf("%s (%.*f %% of requests): %s", Thousands(r.ErrorCount), prec, share, strings.Join(parts, ", "))
}

// msText formats milliseconds readably: 0.42ms, 3.1ms, 120ms.
func msText(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
