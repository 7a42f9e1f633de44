package tokenledger_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
)

// TestSentZeroTimestampIsChecked: a timestamp the client sent is checked
// against the retention window even when it is Go's zero time, which used
// to be taken for a missing timestamp and replaced by now. It must get the
// same answer as the day after it.
func TestSentZeroTimestampIsChecked(t *testing.T) {
	svc, _ := newService(t, nil)
	for _, ts := range []string{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "0001-01-01T01:30:00+01:30", "0001-01-02T00:00:00Z"} {
		events, err := tokenledger.DecodeEvents([]byte(`{"model":"m","promptTokens":1,"timestamp":"` + ts + `"}`))
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		_, err = svc.ValidateAndPrice(events)
		if err == nil || !strings.Contains(err.Error(), "timestamp is older than the retention window") {
			t.Errorf("%s: ValidateAndPrice = %v, timestamp now %v; want the retention-window error", ts, err, events[0].Timestamp)
		}
	}
	// An event without a timestamp still gets now.
	events, err := tokenledger.DecodeEvents([]byte(`{"model":"m","promptTokens":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ValidateAndPrice(events); err != nil || !events[0].Timestamp.Equal(noon) {
		t.Errorf("no timestamp: ValidateAndPrice = %v, timestamp %v; want now (%v)", err, events[0].Timestamp, noon)
	}
}

// TestRetentionWindowEdge: the oldest day kept starts at its UTC midnight;
// the instant before it, written in any offset, is outside the window.
func TestRetentionWindowEdge(t *testing.T) {
	svc, _ := newService(t, nil)
	oldest := tokenledger.DateOf(noon).AddDays(-tokenledger.DefaultRetentionDays)
	for ts, ok := range map[string]bool{
		string(oldest) + "T00:00:00Z":                       true,
		string(oldest) + "T00:30:00-01:00":                  true,
		string(oldest) + "T00:30:00+01:00":                  false,
		string(oldest.AddDays(-1)) + "T23:59:59.999999999Z": false,
	} {
		events, err := tokenledger.DecodeEvents([]byte(`{"model":"m","promptTokens":1,"timestamp":"` + ts + `"}`))
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		_, err = svc.ValidateAndPrice(events)
		if ok && err != nil {
			t.Errorf("%s: ValidateAndPrice = %v, want it accepted", ts, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "oldest day kept is "+string(oldest))) {
			t.Errorf("%s: ValidateAndPrice = %v, want the retention-window error naming %s", ts, err, oldest)
		}
	}
}

// TestDateOfMatchesFormat: DateOf writes the day as time.Format does, in
// every offset and across the years Format pads or does not.
func TestDateOfMatchesFormat(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("east", 14*3600), time.FixedZone("west", -12*3600)}
	for _, base := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		for h := -48; h <= 48; h += 7 {
			for _, z := range zones {
				at := base.Add(time.Duration(h) * time.Hour).In(z)
				if got, want := tokenledger.DateOf(at), at.UTC().Format("2006-01-02"); string(got) != want {
					t.Errorf("DateOf(%v) = %s, want %s", at, got, want)
				}
			}
		}
	}
}
