//go:build linux

package redistest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// WaitUnread waits until a connection to the server holds bytes the
// server has not read (the receive queue in /proc/net/tcp), so that a
// test of a paused server knows a request reached it and is waiting,
// instead of hoping a sleep was long enough.
func (i *Instance) WaitUnread(t testing.TB, within time.Duration) {
	t.Helper()
	port := fmt.Sprintf(":%04X", i.port)
	deadline := time.Now().Add(within)
	for {
		if unread(port) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request waits unread at %s after %s", i.Addr(), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unread reports whether a socket whose local address ends in port (as
// /proc/net/tcp writes it, ":1F90") has a non-empty receive queue.
func unread(port string) bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasSuffix(fields[1], port) {
			continue
		}
		_, rx, ok := strings.Cut(fields[4], ":")
		if n, err := strconv.ParseUint(rx, 16, 64); ok && err == nil && n > 0 {
			return true
		}
	}
	return false
}
