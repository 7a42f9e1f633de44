package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestQueryUndecodableIsRefused checks that a query the URL parser cannot
// decode is a 400 naming the damage, instead of the damaged pair being
// skipped and the action answered with its defaults.
func TestQueryUndecodableIsRefused(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ query, want string }{
		{"?action=history&days=%zz", `broken percent escape "%zz"`},
		{"?action=%zz", `broken percent escape "%zz"`},
		{"?action=date&date=%2", `broken percent escape "%2"`},
		{"?action=history&days=0;", `contains ";"`},
		{"?action=history;days=3", `contains ";"`},
	} {
		a := f.get(c.query)
		if a.status != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400; body %s", c.query, a.status, a.raw)
			continue
		}
		msg, _ := a.body["error"].(string)
		if !strings.Contains(msg, c.want) || strings.Count(msg, ". ") > 0 {
			t.Errorf("GET %s: error %q, want one sentence containing %q", c.query, msg, c.want)
		}
		if _, ok := a.body["field"]; ok {
			t.Errorf("GET %s: a whole-query error names a field: %s", c.query, a.raw)
		}
	}
	// An escape that decodes is still fine.
	f.get("?action=history&days=%33").wantStatus(t, http.StatusOK)
}
