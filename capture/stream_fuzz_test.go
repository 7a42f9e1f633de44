package capture_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/capture"
)

// parsed is what an SSEParser made of a stream, and the usage a Stream of
// each provider read from its events' data.
type parsed struct {
	events  [][2]string // raw, data
	pending string
	dropped int
	usage   []string
}

// parseIn feeds body to a parser in the pieces cuts says (each byte of
// cuts the length of the next piece, 0 meaning 1), then the rest.
func parseIn(body, cuts []byte) (parsed, []string) {
	var out parsed
	var problems []string
	streams := []*capture.Stream{capture.NewStream(capture.OpenAI), capture.NewStream(capture.Anthropic), capture.NewStream(capture.Gemini)}
	p := capture.SSEParser{OnEvent: func(raw, data []byte) {
		out.events = append(out.events, [2]string{string(raw), string(data)})
		if len(raw) > capture.MaxEvent {
			problems = append(problems, fmt.Sprintf("an event of %d bytes, over MaxEvent", len(raw)))
		}
		if bytes.ContainsRune(data, '\r') {
			problems = append(problems, fmt.Sprintf("data %q holds a CR", data))
		}
		if !bytes.HasSuffix(raw, []byte("\n")) && !bytes.HasSuffix(raw, []byte("\r")) {
			problems = append(problems, fmt.Sprintf("event %q does not end in a line end", raw))
		}
		for _, s := range streams {
			s.Data(data)
		}
	}}
	for _, c := range cuts {
		n := min(max(int(c), 1), len(body))
		p.Write(body[:n])
		body = body[n:]
	}
	p.Write(body)
	out.pending, out.dropped = string(p.Pending()), p.Dropped
	p.Close()
	for _, s := range streams {
		u, err := s.Usage()
		out.usage = append(out.usage, fmt.Sprintf("%+v %v", u, err))
	}
	return out, problems
}

// FuzzStream reads any bytes as a server-sent-event stream arriving in
// any pieces, the way the proxy reads a provider's answer: never a panic;
// the same events, pending bytes and usage however the bytes are cut; the
// events and the pending bytes are the stream itself, in order; no event
// over MaxEvent reaches OnEvent, no data holds a CR.
func FuzzStream(f *testing.F) {
	for _, fx := range fixtures {
		// The streams' last events, where the usage is: a whole fixture
		// (kilobytes) makes the fuzzer's minimizing of each new input take
		// most of its time.
		if b, err := os.ReadFile("testdata/" + fx.file); err == nil && !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
			f.Add(b[max(0, len(b)-400):], uint64(0x0103070101c8))
		}
	}
	f.Add([]byte(": comment\rdata: a\r\ndata:b\nid: 7\n\nevent: x\r\rdata: cut"), uint64(0x02010109))
	f.Add([]byte("data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\r\n\r\ndata: [DONE]\r\n\r\n"), uint64(0x010101))
	f.Add([]byte("data:\ndata\n\ndata: x\r"), uint64(0))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		cuts := binary.LittleEndian.AppendUint64(nil, seed)
		whole, problems := parseIn(body, nil)
		cut, more := parseIn(body, cuts)
		for _, p := range append(problems, more...) {
			t.Error(p)
		}
		if fmt.Sprint(whole) != fmt.Sprint(cut) {
			t.Fatalf("cut %v, the stream reads differently:\nwhole %+v\ncut   %+v", cuts, whole, cut)
		}
		if whole.dropped == 0 {
			var raw strings.Builder
			for _, e := range whole.events {
				raw.WriteString(e[0])
			}
			if got := raw.String() + whole.pending; got != string(body) {
				t.Fatalf("the events and pending bytes are %q, not the stream %q", got, body)
			}
		}
	})
}
