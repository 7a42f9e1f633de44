// Package buildinfo says which tokenledger is running, for --version,
// the start-up line and GET /api/test.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Version is the module version the binary was built from ("v1.2.3"
// when installed with go install …@v1.2.3), else "devel" followed by the
// commit it was built from when Go recorded one ("devel+1a2b3c4d5e6f",
// "-dirty" added for uncommitted changes).
var Version = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionOf(bi)
})

func versionOf(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v := "devel"
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		v += "+" + rev[:min(12, len(rev))] + dirty
	}
	return v
}
