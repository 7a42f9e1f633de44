//go:build !linux

package redistest

import (
	"testing"
	"time"
)

// WaitUnread needs Linux's /proc/net/tcp; elsewhere the test skips.
func (i *Instance) WaitUnread(t testing.TB, n int, within time.Duration) {
	t.Skip("WaitUnread reads /proc/net/tcp, which only Linux has")
}
