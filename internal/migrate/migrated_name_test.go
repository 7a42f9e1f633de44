package migrate

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/tokenledger/tokenledger/store/memstore"
)

// TestMigratedFileImportedAgainKeepsItsName: a migrated file imported again
// by hand (after a reset) counts once and keeps its name, rather than
// becoming <name>.migrated.migrated; MigratedCopies finds where a
// migrated file went.
func TestMigratedFileImportedAgainKeepsItsName(t *testing.T) {
	dir := t.TempDir()
	path := fixture(t, dir)
	db := memstore.New(nil, 0)
	if res, err := Run(context.Background(), path, db, opts(io.Discard)); err != nil || res.RenamedTo != path+MigratedSuffix {
		t.Fatalf("first migration: %+v, %v", res, err)
	}
	if got := MigratedCopies(path); !slices.Equal(got, []string{path + MigratedSuffix}) {
		t.Errorf("MigratedCopies = %v", got)
	}
	if err := db.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := opts(io.Discard)
	o.IgnoreMark = true
	res, err := Run(context.Background(), path+MigratedSuffix, db, o)
	if err != nil || res.Migrated != 2046 || !res.NameKept || res.RenamedTo != "" {
		t.Fatalf("import of the migrated file: %+v, %v; want 2046 migrated, name kept", res, err)
	}
	if _, err := os.Stat(path + MigratedSuffix); err != nil {
		t.Errorf("the migrated file moved: %v", err)
	}
	if _, err := os.Stat(path + MigratedSuffix + MigratedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the migrated file was renamed to .migrated.migrated (%v)", err)
	}
}

func TestIsMigratedName(t *testing.T) {
	for name, want := range map[string]bool{
		"logs/token_usage.json.migrated":     true,
		"logs/token_usage.json.migrated.2":   true,
		"logs/token_usage.json.migrated.100": true,
		"logs/token_usage.json.migrated.101": false,
		"logs/token_usage.json.migrated.02":  false,
		"logs/token_usage.json.migrated.x":   false,
		"logs/token_usage.json":              false,
		"logs/migrated/token_usage.json":     false,
	} {
		if got := IsMigratedName(name); got != want {
			t.Errorf("IsMigratedName(%q) = %v, want %v", name, got, want)
		}
	}
}
