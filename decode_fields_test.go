package tokenledger

import "testing"

// TestFieldSlotMatchesNames: fieldSlot's switch and fieldNames name the
// same slots, and nothing else is a slot.
func TestFieldSlotMatchesNames(t *testing.T) {
	for s, name := range fieldNames {
		if got := fieldSlot([]byte(name)); got != s {
			t.Errorf("fieldSlot(%q) = %d, want %d", name, got, s)
		}
	}
	for _, k := range []string{"", "ID", "events", "userid", "costusd", "metadata "} {
		if got := fieldSlot([]byte(k)); got != -1 {
			t.Errorf("fieldSlot(%q) = %d, want -1", k, got)
		}
	}
}
