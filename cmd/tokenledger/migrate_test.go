package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// TestMigrateSaysWhereAMigratedFileWent: migrating a file again after it
// was migrated names where it went and how to import it again; importing
// that file keeps its name.
func TestMigrateSaysWhereAMigratedFileWent(t *testing.T) {
	srv := redistest.Server(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "token_usage.json")
	b, err := os.ReadFile("../../testdata/original-format/token_usage.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENLEDGER_STORE": "redis", "REDIS_URL": srv.URL(), "TOKENLEDGER_FILE": filepath.Join(dir, "other.json")}

	r := cli(t, env, "", "migrate", "--file", path)
	if r.code != 0 || !strings.Contains(r.stdout, "renamed to "+path+".migrated\n") {
		t.Fatalf("migrate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = cli(t, env, "", "migrate", "--file", path)
	want := "tokenledger: migrate: " + path + " was already migrated: it is now " + path + ".migrated; to import that file again (say, after a reset), give --file " + path + ".migrated\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("migrate again: exit %d, stderr %q\nwant %q", r.code, r.stderr, want)
	}
	r = cli(t, env, "", "migrate", "--file", path+".migrated")
	if r.code != 0 || !strings.Contains(r.stdout, path+".migrated keeps its name: it is named as a migrated file already\n") {
		t.Errorf("migrate --file F.migrated: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path + ".migrated.migrated"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("renamed to .migrated.migrated (%v)", err)
	}
	r = cli(t, env, "", "migrate", "--file", filepath.Join(dir, "never.json"))
	if r.code != 1 || !strings.Contains(r.stderr, "never.json: file does not exist") {
		t.Errorf("a file that never existed: exit %d, %s", r.code, r.stderr)
	}
}
