package testkit_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/tokenledger/tokenledger"

// floors puts each package of the module on a floor, by its path's longest
// listed prefix: a package may depend only on packages of its own floor or
// lower ones (docs/architecture.md, "Floors"). Test infrastructure is
// floor 9 and above every program but cmd/soak, so no production package
// may depend on it.
var floors = map[string]int{
	"":                 1, // the domain: package tokenledger
	"capture":          1,
	"pricing":          1,
	"store":            2,
	"internal":         3, // services and their libraries
	"internal/app":     4, // wiring
	"serverless":       4,
	"cmd":              5, // programs
	"api":              5,
	"internal/testkit": 9,
	"store/storetest":  9,
	"cmd/soak":         9, // drives real processes; a test program
}

// floorOf returns the floor of the package at path rel (relative to the
// module) and the prefix that decided it.
func floorOf(rel string) (int, string) {
	best, floor := "", floors[""]
	for p, f := range floors {
		if p != "" && (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
			best, floor = p, f
		}
	}
	return floor, best
}

// TestFloors: `go list -deps` of every package of the module shows no
// dependency on a package of a higher floor (test code is not listed:
// tests may use the test infrastructure).
func TestFloors(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var bad []string
	pkgs := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := rel(fields[0])
		pkgs++
		f, _ := floorOf(pkg)
		for _, dep := range fields[1:] {
			if !strings.HasPrefix(dep, module) {
				continue
			}
			d := rel(dep)
			if df, _ := floorOf(d); df > f {
				bad = append(bad, "/"+pkg+" (floor "+itoa(f)+") depends on /"+d+" (floor "+itoa(df)+")")
			}
		}
	}
	if pkgs < 20 {
		t.Fatalf("go list listed %d packages; want the whole module", pkgs)
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
}

// TestFloorOf: the table's prefixes decide by whole path elements.
func TestFloorOf(t *testing.T) {
	for rel, want := range map[string]int{"": 1, "store/filestore": 2, "store/storetest": 9, "internal/apps": 3, "internal/app": 4, "cmd/soak": 9, "cmd/tokenledger": 5, "internal/testkit/redistest": 9} {
		if got, _ := floorOf(rel); got != want {
			t.Errorf("floorOf(%q) = %d, want %d", rel, got, want)
		}
	}
}

func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

func itoa(n int) string { return string(rune('0' + n)) }
