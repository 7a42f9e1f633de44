package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// TestSmoke runs the soak itself for a few seconds, with a fault every
// second or two, so that the code scripts/soak.sh runs cannot rot: the run
// must carry out every kind of request and fault and find nothing lost,
// doubled or refused. (Real redis-server and tokenledger processes.)
func TestSmoke(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(redistest.RequireEnv) == "1" {
			t.Fatalf("redis-server is not installed, and %s=1 forbids skipping", redistest.RequireEnv)
		}
		t.Skipf("redis-server is not installed (set %s=1 to make this a failure)", redistest.RequireEnv)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tokenledger")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tokenledger/tokenledger/cmd/tokenledger").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	cfg := Config{Duration: 12 * time.Second, Seed: 7, Bin: bin, Dir: dir, Rate: 40, Clients: 4,
		FaultGapMin: time.Second, FaultGapMax: 2 * time.Second, Out: &out}
	rep, err := Run(context.Background(), cfg)
	t.Logf("soak output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		for _, f := range []string{"instance0.log", "instance1.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			t.Logf("--- %s ---\n%s", f, tail(string(b), 3000))
		}
		t.Fatalf("the soak found lost %d, doubled %d, %d mismatches, %d breaches, %d never acknowledged", rep.Lost, rep.Doubled, len(rep.Mismatches), len(rep.ContractBreaches), rep.Unsettled)
	}
	total := 0
	for _, n := range rep.Faults {
		total += n
	}
	if rep.Acked == 0 || rep.Resent == 0 || rep.Proxied == 0 || total < 3 {
		t.Errorf("the smoke run did too little to prove anything: %d acknowledged, %d re-sent, %d proxied, %d faults", rep.Acked, rep.Resent, rep.Proxied, total)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
