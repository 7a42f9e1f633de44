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

// WaitUnread waits until n connections to the server hold bytes the
// server has not read (their receive queues in /proc/net/tcp), so that a
// test of a paused server knows its requests reached it and wait, instead
// of hoping a sleep was long enough.
func (i *Instance) WaitUnread(t testing.TB, n int, within time.Duration) {
	t.Helper()
	port := fmt.Sprintf(":%04X", i.port)
	deadline := time.Now().Add(within)
	for {
		got := unread(port)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, not %d, hold unread requests at %s after %s", got, n, i.Addr(), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unread counts the sockets whose local address ends in port (as
// /proc/net/tcp writes it, ":1F90") with a non-empty receive queue.
func unread(port string) int {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0
	}
	defer f.Close()
	count := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasSuffix(fields[1], port) {
			continue
		}
		_, rx, ok := strings.Cut(fields[4], ":")
		if n, err := strconv.ParseUint(rx, 16, 64); ok && err == nil && n > 0 {
			count++
		}
	}
	return count
}
