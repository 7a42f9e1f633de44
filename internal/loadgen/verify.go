package loadgen

import (
	"fmt"
	"strings"

	"github.com/tokenledger/tokenledger"
)

// Verification is what comparing the service's totals with the run's
// found.
type Verification struct {
	// OK: every model's and user's totals grew by exactly the stored
	// events.
	OK bool `json:"ok"`
	// Inconclusive: some events' outcome stayed unknown, and the totals
	// lie within what they allow; the run can neither pass nor fail them.
	Inconclusive bool `json:"inconclusive"`
	// Message is one line saying what matched or what differs.
	Message string `json:"message"`
	// Counted is how much the run's models grew on the service.
	Counted tokenledger.Totals `json:"counted"`
	// Models and Users are how many of the run's names were compared.
	Models int `json:"models"`
	Users  int `json:"users"`
	// Differences lists up to 10 names whose totals differ.
	Differences []string `json:"differences,omitempty"`
}

// sub returns a − b.
func sub(a, b tokenledger.Totals) tokenledger.Totals {
	return tokenledger.Totals{PromptTokens: a.PromptTokens - b.PromptTokens, CompletionTokens: a.CompletionTokens - b.CompletionTokens,
		TotalTokens: a.TotalTokens - b.TotalTokens, RequestCount: a.RequestCount - b.RequestCount, Cost: a.Cost - b.Cost}
}

// within reports whether lo ≤ v ≤ lo + span in every counter.
func within(v, lo, span tokenledger.Totals) bool {
	in := func(v, lo, span int64) bool { return v >= lo && v <= lo+span }
	return in(v.PromptTokens, lo.PromptTokens, span.PromptTokens) && in(v.CompletionTokens, lo.CompletionTokens, span.CompletionTokens) &&
		in(v.TotalTokens, lo.TotalTokens, span.TotalTokens) && in(v.RequestCount, lo.RequestCount, span.RequestCount) &&
		in(int64(v.Cost), int64(lo.Cost), int64(span.Cost))
}

// describe says a's counters in words: "45 events, 12,345 tokens, $0.0123".
func describe(t tokenledger.Totals) string {
	return fmt.Sprintf("%s events, %s tokens, $%s", Thousands(t.RequestCount), Thousands(t.TotalTokens), t.Cost)
}

// compare checks after − before against the expected totals (and, for
// events of unknown outcome, the unknown ones on top).
func (r *run) compare(res *Result, before, after Totals, expModels, expUsers, unkModels, unkUsers []tokenledger.Totals) *Verification {
	v := &Verification{Models: len(expModels), Users: len(expUsers)}
	exact := res.Unknown == 0
	var expSum, unkSum tokenledger.Totals
	// differ records a difference and reports whether there was one.
	differ := func(kind, name string, got, want, unk tokenledger.Totals) bool {
		if okTotals(got, want, unk, exact) {
			return false
		}
		if len(v.Differences) < 10 {
			line := fmt.Sprintf("%s %s: %s, want %s", kind, name, describe(got), describe(want))
			if !exact {
				line += " plus at most " + describe(unk) + " of unknown outcome"
			}
			v.Differences = append(v.Differences, line)
		}
		return true
	}
	modelsDiffer, usersDiffer := 0, 0
	for i, name := range r.names.models {
		got := sub(after.Models[name], before.Models[name])
		v.Counted.Add(got)
		expSum.Add(expModels[i])
		unkSum.Add(unkModels[i])
		if differ("model", name, got, expModels[i], unkModels[i]) {
			modelsDiffer++
		}
	}
	for i, name := range r.names.users {
		if differ("user", name, sub(after.Users[name], before.Users[name]), expUsers[i], unkUsers[i]) {
			usersDiffer++
		}
	}
	// Names of this run the run never sent.
	stray := 0
	for _, m := range []struct {
		kind string
		list []string
		got  map[string]tokenledger.Totals
	}{{"model", r.names.models, after.Models}, {"user", r.names.users, after.Users}} {
		for _, name := range sortedKeys(m.got) {
			if !strings.HasPrefix(name, r.names.prefix) {
				continue
			}
			k := "m"
			if m.kind == "user" {
				k = "u"
			}
			if r.names.index(m.list, k, name) < 0 {
				stray++
				if len(v.Differences) < 10 {
					v.Differences = append(v.Differences, fmt.Sprintf("%s %s was never sent by this run but has %s", m.kind, name, describe(m.got[name])))
				}
			}
		}
	}

	// The answers' accepted and duplicates are not checked against the
	// ids: a correct service may call a re-sent id new (events kept in
	// the fallback spool are all "accepted"; duplicates are resolved on
	// delivery) and a fresh one a duplicate (the REST client retries a
	// call whose reply was lost). Only the totals are the truth.
	switch {
	case res.Stored == 0 && modelsDiffer == 0 && usersDiffer == 0 && stray == 0:
		v.Message = "nothing to verify: the service acknowledged no event (see the errors)"
	case modelsDiffer == 0 && usersDiffer == 0 && stray == 0 && exact:
		v.OK = true
		v.Message = fmt.Sprintf("ok: this run's %d models and %d users grew by exactly %s", len(expModels), len(expUsers), describe(expSum))
		if res.ResentEvents > 0 || res.UnknownAfterLoad > 0 {
			v.Message += fmt.Sprintf(" (%s re-sent events and %s events of unknown outcome sent again, each counted once)",
				Thousands(res.ResentEvents), Thousands(res.UnknownAfterLoad))
		}
	case modelsDiffer == 0 && usersDiffer == 0 && stray == 0:
		v.Inconclusive = true
		v.Message = fmt.Sprintf("inconclusive: %s events got no clear answer even after %d re-sends; the service counted %s, within the %s acknowledged plus at most %s of unknown outcome",
			Thousands(res.Unknown), r.cfg.ResendAttempts, describe(v.Counted), describe(expSum), describe(unkSum))
	default:
		var b strings.Builder
		b.WriteString("mismatch: ")
		switch {
		case exact && v.Counted.RequestCount < expSum.RequestCount:
			fmt.Fprintf(&b, "the service counted %s for this run's models where it acknowledged %s: %s events missing",
				describe(v.Counted), describe(expSum), Thousands(expSum.RequestCount-v.Counted.RequestCount))
		case exact && v.Counted.RequestCount > expSum.RequestCount:
			fmt.Fprintf(&b, "the service counted %s for this run's models where it acknowledged %s: %s events too many",
				describe(v.Counted), describe(expSum), Thousands(v.Counted.RequestCount-expSum.RequestCount))
		case exact && v.Counted != expSum:
			fmt.Fprintf(&b, "the service counted %s for this run's models where it acknowledged %s",
				describe(v.Counted), describe(expSum))
		case !exact && (modelsDiffer > 0 || usersDiffer > 0):
			fmt.Fprintf(&b, "the service counted %s for this run's models, outside the %s acknowledged plus at most %s of unknown outcome",
				describe(v.Counted), describe(expSum), describe(unkSum))
		case modelsDiffer > 0 || usersDiffer > 0:
			b.WriteString("the sums agree but the split over models and users does not")
		default:
			fmt.Fprintf(&b, "%d names of this run appeared that it never sent (%s)", stray, v.Differences[len(v.Differences)-1])
		}
		if modelsDiffer > 0 || usersDiffer > 0 {
			fmt.Fprintf(&b, " (%d of %d models and %d of %d users differ; first: %s)", modelsDiffer, len(expModels), usersDiffer, len(expUsers), v.Differences[0])
		}
		v.Message = b.String()
	}
	return v
}

// okTotals is differ's test without the recording.
func okTotals(got, want, unk tokenledger.Totals, exact bool) bool {
	if exact {
		return got == want
	}
	return within(got, want, unk)
}

// Thousands formats n with commas: 1,234,567.
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
