package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/store/fallback"
)

// TestSpoolInUseNamesItsSetting: the spool's own sentence names no
// setting; the command adds the one that moves it, and the error still
// matches ErrSpoolInUse.
func TestSpoolInUseNamesItsSetting(t *testing.T) {
	dir := t.TempDir()
	first, err := fallback.OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = fallback.OpenSpool(dir)
	if err == nil || strings.Contains(err.Error(), "TOKENLEDGER_") {
		t.Fatalf("second OpenSpool: %v, want an error that names no setting", err)
	}
	hinted := withHint(err)
	if !errors.Is(hinted, fallback.ErrSpoolInUse) || !strings.HasSuffix(hinted.Error(), "its own spool directory (TOKENLEDGER_SPOOL_DIR names it; by default it lives next to TOKENLEDGER_FILE)") {
		t.Errorf("with the hint: %v", hinted)
	}
	if plain := errors.New("something else"); withHint(plain) != plain {
		t.Errorf("an error without a hint was changed")
	}
}
