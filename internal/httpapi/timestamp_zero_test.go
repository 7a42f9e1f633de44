package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestPostZeroTimestampIsRefused: a POST whose timestamp is
// 0001-01-01T00:00:00Z is outside the retention window like any other old
// time; it is refused and stores nothing, instead of being counted today.
func TestPostZeroTimestampIsRefused(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	a := f.post(`{"model":"m","promptTokens":1,"timestamp":"0001-01-01T00:00:00Z"}`)
	a.wantStatus(t, http.StatusBadRequest)
	if msg, _ := a.body["error"].(string); !strings.Contains(msg, "older than the retention window") {
		t.Errorf("error %q, want the retention-window sentence", msg)
	}
	if after := f.state(); after != before {
		t.Errorf("store changed by a refused event:\nbefore %s\nafter  %s", before, after)
	}
}
