package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/internal/buildinfo"
)

func TestVersionCommand(t *testing.T) {
	want := "tokenledger " + buildinfo.Version() + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		r := cli(t, map[string]string{"TOKENLEDGER_STORE": "bogus"}, "", args...) // no configuration needed
		if r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", args, r.code, r.stdout, r.stderr, want)
		}
	}
	if r := cli(t, memoryEnv, "", "version", "extra"); r.code != 2 {
		t.Errorf("version extra: exit %d", r.code)
	}
}

// TestVersionOfABuildFromTheCheckout builds the command as a user does
// (go build with version control information) and checks that --version
// names the commit it was built from: nothing hard-coded that goes stale.
func TestVersionOfABuildFromTheCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v)", err)
	}
	bin := filepath.Join(t.TempDir(), "tokenledger")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if short := strings.TrimSpace(string(rev))[:12]; !strings.HasPrefix(string(out), "tokenledger v") || !strings.Contains(string(out), short) {
		t.Errorf("--version = %q, want a version naming commit %s", out, short)
	}
}
