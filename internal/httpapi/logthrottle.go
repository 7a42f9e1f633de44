package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// maxRefusalLinesPerSecond bounds the log lines of one kind of refused or
// failed request (a wrong key, storage unavailable, an internal error):
// anyone who can reach the port could otherwise fill the log, and the
// disk under it, one cheap request at a time. The requests beyond it are
// still answered; their lines are counted, and one summary line says how
// many were left out.
const maxRefusalLinesPerSecond = 10

// throttle counts the lines of each kind in the current second.
type throttle struct {
	mu    sync.Mutex
	log   *slog.Logger
	kinds map[string]*lineWindow
}

type lineWindow struct {
	second  int64 // Unix second of the window
	lines   int   // lines logged in it
	dropped int   // lines left out since the last summary
	level   slog.Level
	pending bool // a summary is scheduled
}

// logRefusal logs msg with attrs at level, unless maxRefusalLinesPerSecond
// lines with this msg were already logged this second; then it counts the
// line, and a summary follows within a second.
func (s *server) logRefusal(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	if s.throttle.allow(msg, level, time.Now()) {
		s.log.LogAttrs(ctx, level, msg, attrs...)
	}
}

// allow reports whether a line of kind may be logged now; when not, it
// counts it and makes sure a summary is scheduled.
func (t *throttle) allow(kind string, level slog.Level, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.kinds[kind]
	if w == nil {
		if t.kinds == nil {
			t.kinds = map[string]*lineWindow{}
		}
		w = &lineWindow{}
		t.kinds[kind] = w
	}
	if sec := now.Unix(); sec != w.second {
		w.second, w.lines = sec, 0
	}
	if w.lines < maxRefusalLinesPerSecond {
		w.lines++
		return true
	}
	w.dropped++
	w.level = level
	if !w.pending {
		w.pending = true
		time.AfterFunc(time.Second, func() { t.summarize(kind) })
	}
	return false
}

// summarize logs how many lines of kind were left out since the last
// summary.
func (t *throttle) summarize(kind string) {
	t.mu.Lock()
	w := t.kinds[kind]
	n, level := w.dropped, w.level
	w.dropped, w.pending = 0, false
	t.mu.Unlock()
	if n > 0 {
		t.log.LogAttrs(context.Background(), level,
			fmt.Sprintf("%s: %d more such lines left out (at most %d a second are logged)", kind, n, maxRefusalLinesPerSecond),
			slog.Int("leftOut", n))
	}
}
