package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// LogRecorder is a slog.Handler that keeps every record as one line
// ("LEVEL message key=value …"), for tests that count what was logged.
type LogRecorder struct {
	mu   sync.Mutex
	recs []string
}

// Enabled is true for every level.
func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r as a line.
func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

// WithAttrs returns l: attributes given that way are not kept.
func (l *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l.
func (l *LogRecorder) WithGroup(string) slog.Handler { return l }

// Lines returns the lines so far.
func (l *LogRecorder) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.recs...)
}

// Count returns how many lines contain s.
func (l *LogRecorder) Count(s string) int {
	n := 0
	for _, line := range l.Lines() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// All returns every line joined by newlines, for failure messages.
func (l *LogRecorder) All() string { return strings.Join(l.Lines(), "\n") }
