package capture

import (
	"bytes"
	"fmt"
)

// Stream reads the usage of a streamed response from its events' data,
// one event at a time, keeping only the few counts it needs: memory does
// not grow with the stream.
type Stream struct {
	kind      Kind
	id, model string
	started   *Usage // Anthropic: message_start's counts
	usage     Usage
	have      bool
	malformed int
	lastErr   error
}

// NewStream returns a Stream for a response of kind k.
func NewStream(k Kind) *Stream { return &Stream{kind: k} }

// Data folds one event's data into the stream. OpenAI's closing "[DONE]"
// is skipped; data that is not JSON of the provider's shape is counted
// as malformed (Malformed) and otherwise ignored.
func (s *Stream) Data(data []byte) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "[DONE]" {
		return
	}
	var err error
	switch s.kind {
	case OpenAI:
		err = s.openAIData(data)
	case Anthropic:
		err = s.anthropicData(data)
	case Gemini:
		err = s.geminiData(data)
	default:
		err = fmt.Errorf("unknown provider kind %q", s.kind)
	}
	if err != nil {
		s.malformed++
		s.lastErr = err
	}
}

// set keeps u as the stream's usage unless err says it is not one.
func (s *Stream) set(u Usage, err error) error {
	if err != nil {
		return err
	}
	s.usage, s.have = u, true
	return nil
}

// Malformed returns how many events could not be read, and why the last
// one could not.
func (s *Stream) Malformed() (int, error) { return s.malformed, s.lastErr }

// Usage returns the stream's usage, or an error wrapping ErrNoUsage when
// no event carried one.
func (s *Stream) Usage() (Usage, error) {
	if !s.have {
		if s.malformed > 0 {
			return Usage{}, noUsagef("no event of the %s stream carried usage (%d could not be read: %v)", s.kind, s.malformed, s.lastErr)
		}
		return Usage{}, noUsagef("no event of the %s stream carried usage", s.kind)
	}
	return s.usage, nil
}

// MaxEvent is the largest server-sent event SSEParser keeps; a longer
// one is dropped (its data never reaches OnEvent) and counted.
const MaxEvent = 1 << 20

// SSEParser splits a text/event-stream into events as its bytes arrive
// (in any pieces), as the HTML standard's parsing rules say: lines end in
// LF, CRLF or CR, "data:" lines are joined with LF, a blank line ends an
// event, other fields and comments are skipped.
type SSEParser struct {
	// OnEvent receives each event: raw is its bytes as they came,
	// through the blank line; data its joined data lines. Both are valid
	// only during the call.
	OnEvent func(raw, data []byte)
	// OnData, when OnEvent is nil, receives each event's data.
	OnData func(data []byte)

	line, data, raw []byte
	hasData         bool
	afterCR         bool
	tooLong         bool
	// Dropped counts the events longer than MaxEvent.
	Dropped int
}

// Write parses b. It never fails.
func (p *SSEParser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.afterCR {
			p.afterCR = false
			if b[0] == '\n' {
				p.keep(b[:1])
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.keep(b)
			if !p.tooLong {
				p.line = append(p.line, b...)
			}
			p.limit()
			return n, nil
		}
		p.keep(b[:i+1])
		if !p.tooLong {
			p.line = append(p.line, b[:i]...)
		}
		p.afterCR = b[i] == '\r'
		b = b[i+1:]
		p.endLine()
	}
	return n, nil
}

// Close ends the stream: an event cut off without its blank line is not
// an event (the standard discards it).
func (p *SSEParser) Close() {
	p.line, p.data, p.raw, p.hasData, p.tooLong = p.line[:0], p.data[:0], p.raw[:0], false, false
}

// Pending returns the bytes of the event not yet ended.
func (p *SSEParser) Pending() []byte { return p.raw }

func (p *SSEParser) keep(b []byte) {
	if !p.tooLong {
		p.raw = append(p.raw, b...)
	}
}

// limit drops the event being read once it is longer than MaxEvent.
func (p *SSEParser) limit() {
	if len(p.raw) > MaxEvent && !p.tooLong {
		p.tooLong = true
		p.raw, p.data, p.line = p.raw[:0], p.data[:0], p.line[:0]
	}
}

func (p *SSEParser) endLine() {
	line := p.line
	p.line = p.line[:0]
	p.limit()
	if len(line) == 0 {
		p.dispatch()
		return
	}
	if p.tooLong {
		return
	}
	field, value, _ := bytes.Cut(line, []byte(":"))
	if string(field) != "data" {
		return
	}
	value = bytes.TrimPrefix(value, []byte(" "))
	if p.hasData {
		p.data = append(p.data, '\n')
	}
	p.data = append(p.data, value...)
	p.hasData = true
}

func (p *SSEParser) dispatch() {
	switch {
	case p.tooLong:
		p.Dropped++
	case p.OnEvent != nil:
		p.OnEvent(p.raw, p.data)
	case p.OnData != nil && p.hasData:
		p.OnData(p.data)
	}
	p.raw, p.data, p.hasData, p.tooLong = p.raw[:0], p.data[:0], false, false
}
