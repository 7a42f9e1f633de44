package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/tokenledger/tokenledger/capture"
)

// MaxWholeBody is the most of a response that is not a stream the proxy
// keeps to read its usage from; a longer one is forwarded, not recorded.
const MaxWholeBody = 8 << 20

// recordTimeout bounds the recording of one event.
const recordTimeout = 30 * time.Second

// watch wraps res.Body so that the bytes the client gets are read for
// usage as they pass, and the usage is recorded when the body ends.
func (p *Proxy) watch(c *call, res *http.Response) {
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	w := &watched{p: p, c: c, upstream: res.Body}
	if mt == "text/event-stream" {
		w.stream = capture.NewStream(c.up.Kind)
		w.parser = &capture.SSEParser{OnEvent: w.event}
	}
	res.Body = w
}

// watched is a response body on its way to the client.
type watched struct {
	p        *Proxy
	c        *call
	upstream io.ReadCloser

	stream *capture.Stream    // nil for a whole (not streamed) body
	parser *capture.SSEParser // nil for a whole body
	whole  []byte             // a whole body, up to MaxWholeBody
	tooBig bool               // the whole body was longer than MaxWholeBody
	out    []byte             // events passed, waiting for the client (injected usage only)
	eof    bool               // the upstream's body ended
	once   sync.Once
}

// Read passes the upstream's bytes on. Without an injected usage request
// they pass as they come; with one, event by event, without the usage
// chunk the client did not ask for.
func (w *watched) Read(b []byte) (int, error) {
	if !w.c.injectedUsage || w.parser == nil {
		n, err := w.upstream.Read(b)
		w.see(b[:n])
		if err == io.EOF {
			w.eof = true
		}
		return n, err
	}
	for len(w.out) == 0 {
		if w.eof {
			return 0, io.EOF
		}
		n, err := w.upstream.Read(b)
		w.see(b[:n])
		if err == io.EOF {
			w.eof = true
			w.out = append(w.out, w.parser.Pending()...) // an unfinished event passes as it came
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(b, w.out)
	w.out = w.out[n:]
	return n, nil
}

// see reads b for usage.
func (w *watched) see(b []byte) {
	switch {
	case w.parser != nil:
		w.parser.Write(b)
	case !w.tooBig && len(w.whole)+len(b) <= MaxWholeBody:
		w.whole = append(w.whole, b...)
	default:
		w.tooBig, w.whole = true, nil
	}
}

// event reads one server-sent event and, when the proxy asked for usage
// on the client's behalf, queues it for the client unless it is the
// usage chunk.
func (w *watched) event(raw, data []byte) {
	w.stream.Data(data)
	if w.c.injectedUsage && !capture.IsOpenAIUsageChunk(data) {
		w.out = append(w.out, raw...)
	}
}

// Close ends the body. When the client left before the end, the rest of
// the upstream's answer is still read (not sent) for its usage. Then the
// usage is recorded.
func (w *watched) Close() error {
	w.once.Do(func() {
		if !w.eof {
			buf := make([]byte, 32<<10)
			for {
				n, err := w.upstream.Read(buf)
				w.see(buf[:n])
				if err != nil {
					w.eof = err == io.EOF
					break
				}
			}
		}
		w.upstream.Close()
		w.record()
	})
	return nil
}

// record logs the response's usage, if it has one.
func (w *watched) record() {
	p, c := w.p, w.c
	var u capture.Usage
	var err error
	switch {
	case w.parser != nil:
		w.parser.Close()
		if n, merr := w.stream.Malformed(); n > 0 {
			p.Malformed.Add(int64(n))
			p.o.Logger.Warn("proxy: stream events that could not be read were passed on and not recorded", "upstream", c.up.Name, "path", c.path, "events", n, "last", merr)
		}
		u, err = w.stream.Usage()
	case w.tooBig:
		err = errors.New("the response is longer than the proxy reads for usage")
	case !w.eof:
		err = errors.New("the response ended before its end")
	default:
		u, err = capture.Response(c.up.Kind, w.whole)
	}
	if err != nil {
		p.NoUsage.Add(1)
		p.o.Logger.Debug("proxy: nothing recorded", "upstream", c.up.Name, "path", c.path, "why", err)
		return
	}
	e := u.Event(c.up.Name)
	e.Model = cmp.Or(e.Model, c.model)
	e.UserID, e.SessionID = c.user, c.session
	e.Metadata, _ = json.Marshal(map[string]string{"path": c.path})
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if err := p.o.Record(ctx, e); err != nil {
		p.Failed.Add(1)
		p.o.Logger.Error("proxy: recording the usage of a response failed", "upstream", c.up.Name, "path", c.path, "id", e.ID, "err", err)
		return
	}
	p.Recorded.Add(1)
}
