package httpapi

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A flood of refused requests is answered in full but logs at most
// maxRefusalLinesPerSecond lines a second of each kind, and a summary
// accounts for every line left out.
func TestRefusalLinesAreBounded(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.APIKey = apiKey })
	const sent = 500
	for i := range sent {
		a := f.do("POST", "/api/tokens", "application/json", `{"model":"m","promptTokens":1}`, "Authorization", "Bearer wrong-key-0123456789abcdef")
		if a.status != 403 {
			t.Fatalf("request %d = %d, want 403", i+1, a.status)
		}
	}
	const line = `msg="refused a request with a wrong key"`
	logged := strings.Count(f.logs.String(), line)
	// The requests may straddle a second or two of the wall clock.
	if logged < maxRefusalLinesPerSecond || logged > 3*maxRefusalLinesPerSecond {
		t.Fatalf("%d wrong-key lines for %d requests sent within a moment, want %d a second", logged, sent, maxRefusalLinesPerSecond)
	}
	leftOut := regexp.MustCompile(`refused a request with a wrong key: (\d+) more such lines left out`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		summed := 0
		for _, m := range leftOut.FindAllStringSubmatch(f.logs.String(), -1) {
			n, _ := strconv.Atoi(m[1])
			summed += n
		}
		if logged+summed == sent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines logged + %d left out according to the summaries, want %d:\n%s", logged, summed, sent, f.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
