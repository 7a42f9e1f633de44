// Package nodetest finds Node.js and a test's pinned npm packages for the
// tests that drive real JavaScript clients (the providers' SDKs, the
// Vercel AI SDK). scripts/test.sh installs them; .ci/run requires them.
package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Node returns the path of node when it is installed and dir's
// node_modules holds pkg. Otherwise it skips t, saying what is missing and
// how to install it — or fails t when TOKENLEDGER_REQUIRE_NODE is set.
func Node(t testing.TB, dir, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node is not installed"
	default:
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			missing = pkg + " is not installed (npm ci in " + dir + ")"
		}
	}
	if missing != "" {
		if os.Getenv("TOKENLEDGER_REQUIRE_NODE") != "" {
			t.Fatalf("TOKENLEDGER_REQUIRE_NODE is set but %s", missing)
		}
		t.Skip(missing)
	}
	return node
}
