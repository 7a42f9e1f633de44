package tokenledger_test

import (
	"strings"
	"testing"

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
