package capture_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/capture"
)

// fixtures are the providers' documented shapes, with the usage each
// must give in the ledger's semantics.
var fixtures = []struct {
	file string
	kind capture.Kind
	want capture.Usage
}{
	{"openai-chat.json", capture.OpenAI, capture.Usage{ID: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", Model: "gpt-4o-2024-08-06", Prompt: 1117, Completion: 46, CacheRead: 1024}},
	{"openai-chat-stream.sse", capture.OpenAI, capture.Usage{ID: "chatcmpl-stream1", Model: "o3-mini-2025-01-31", Prompt: 2048, Completion: 900, CacheRead: 1920, Reasoning: 768}},
	{"openai-responses.json", capture.OpenAI, capture.Usage{ID: "resp_67ccd3a9da748190baa7f1570fe91ac6", Model: "o4-mini-2025-04-16", Prompt: 3000, Completion: 1500, CacheRead: 2048, Reasoning: 1024}},
	{"openai-responses-stream.sse", capture.OpenAI, capture.Usage{ID: "resp_stream2", Model: "gpt-4.1-2025-04-14", Prompt: 500, Completion: 20}},
	// Anthropic: input_tokens excludes both cache fields.
	{"anthropic.json", capture.Anthropic, capture.Usage{ID: "msg_01XFDUDYJgAACzvnptvVoYEL", Model: "claude-sonnet-4-20250514", Prompt: 31250, Completion: 310, CacheRead: 30000, CacheWrite: 1200}},
	// Streamed: input from message_start, output the last message_delta's (not summed).
	{"anthropic-stream.sse", capture.Anthropic, capture.Usage{ID: "msg_stream3", Model: "claude-3-5-haiku-20241022", Prompt: 6025, Completion: 15, CacheRead: 4000, CacheWrite: 2000}},
	// Gemini: thoughts are outside candidatesTokenCount.
	{"gemini.json", capture.Gemini, capture.Usage{ID: "mAitaLmkHPPlz7IPvtfUqQ4", Model: "gemini-2.5-flash", Prompt: 4000, Completion: 500, CacheRead: 3000, Reasoning: 380}},
	{"gemini-stream.sse", capture.Gemini, capture.Usage{ID: "gemstream4", Model: "gemini-2.5-pro", Prompt: 12, Completion: 206, Reasoning: 200}},
}

func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		body, err := os.ReadFile("testdata/" + f.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := capture.Body(f.kind, body)
		if err != nil || got != f.want {
			t.Errorf("%s:\n got  %+v, %v\n want %+v", f.file, got, err, f.want)
		}
		if !strings.HasSuffix(f.file, ".sse") {
			continue
		}
		// The same stream with CRLF line ends, fed one byte at a time,
		// and as a JSON array of its events.
		crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
		s := capture.NewStream(f.kind)
		p := capture.SSEParser{OnData: s.Data}
		for i := range crlf {
			p.Write(crlf[i : i+1])
		}
		if got, err := s.Usage(); err != nil || got != f.want {
			t.Errorf("%s byte by byte with CRLF: %+v, %v", f.file, got, err)
		}
		var events []json.RawMessage
		p = capture.SSEParser{OnData: func(d []byte) {
			if string(d) != "[DONE]" {
				events = append(events, append(json.RawMessage(nil), d...))
			}
		}}
		p.Write(body)
		arr, _ := json.Marshal(events)
		if got, err := capture.Body(f.kind, arr); err != nil || got != f.want {
			t.Errorf("%s as a JSON array: %+v, %v", f.file, got, err)
		}
	}
}

func TestNoUsage(t *testing.T) {
	for _, c := range []struct {
		kind capture.Kind
		body string
	}{
		{capture.OpenAI, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`},
		{capture.Anthropic, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
		{capture.Gemini, `{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`},
		{capture.OpenAI, "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n"},
		{capture.Anthropic, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"},
		{capture.Gemini, "   "},
	} {
		if u, err := capture.Body(c.kind, []byte(c.body)); !errors.Is(err, capture.ErrNoUsage) {
			t.Errorf("%s %q: %+v, %v; want ErrNoUsage", c.kind, c.body, u, err)
		}
	}
}

func TestBadCounts(t *testing.T) {
	for _, c := range []struct {
		kind capture.Kind
		body string
	}{
		{capture.OpenAI, `{"id":"a","model":"m","usage":{"prompt_tokens":-1,"completion_tokens":1}}`},
		{capture.OpenAI, `{"id":"a","model":"m","usage":{"prompt_tokens":1.5,"completion_tokens":1}}`},
		{capture.OpenAI, `{"id":"a","model":"m","usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":11}}}`},
		{capture.OpenAI, `{"id":"a","model":"m","usage":{"prompt_tokens":"10","completion_tokens":1}}`},
		{capture.Anthropic, `{"id":"a","model":"m","usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,"output_tokens":1}}`},
		{capture.Gemini, `{"modelVersion":"g","usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"thoughtsTokenCount":1099511627776}}`},
		{capture.OpenAI, `{"id":"a","model":"m","usage":{"input_tokens":1,"output_tokens":2,"output_tokens_details":{"reasoning_tokens":3}}}`},
	} {
		u, err := capture.Body(c.kind, []byte(c.body))
		if err == nil || errors.Is(err, capture.ErrNoUsage) {
			t.Errorf("%s %s: %+v, %v; want a count error", c.kind, c.body, u, err)
		}
	}
}

func TestMalformedEventsAreCounted(t *testing.T) {
	body := "data: {not json\n\n" + mustRead(t, "testdata/openai-chat-stream.sse")
	s := capture.NewStream(capture.OpenAI)
	p := capture.SSEParser{OnData: s.Data}
	p.Write([]byte(body))
	if n, err := s.Malformed(); n != 1 || err == nil {
		t.Errorf("Malformed() = %d, %v; want 1 and its error", n, err)
	}
	if u, err := s.Usage(); err != nil || u.ID != "chatcmpl-stream1" {
		t.Errorf("the stream's usage after a malformed event: %+v, %v", u, err)
	}
}

func TestUsageChunk(t *testing.T) {
	if !capture.IsOpenAIUsageChunk([]byte(`{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)) {
		t.Error("the include_usage chunk is not recognised")
	}
	for _, d := range []string{`{"id":"c","choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}`, `{"id":"c","choices":[],"usage":null}`, `{"id":"c","usage":{"prompt_tokens":1}}`, `[DONE]`} {
		if capture.IsOpenAIUsageChunk([]byte(d)) {
			t.Errorf("%s taken for the include_usage chunk", d)
		}
	}
}

func TestSSEParser(t *testing.T) {
	var got []string
	p := capture.SSEParser{OnEvent: func(raw, data []byte) { got = append(got, string(raw)+"|"+string(data)) }}
	p.Write([]byte(": comment\rdata: a\r\ndata:b\nid: 7\n\nevent: x\r\rdata: cut"))
	p.Close()
	want := []string{": comment\rdata: a\r\ndata:b\nid: 7\n\n|a\nb", "event: x\r\r|"}
	if strings.Join(got, "#") != strings.Join(want, "#") {
		t.Errorf("events %q, want %q", got, want)
	}
	p = capture.SSEParser{OnData: func([]byte) { t.Error("an event over MaxEvent reached OnData") }}
	p.Write([]byte("data: " + strings.Repeat("x", capture.MaxEvent+1)))
	p.Write([]byte("\n\n"))
	if p.Dropped != 1 {
		t.Errorf("Dropped = %d, want 1", p.Dropped)
	}
}

func TestEvent(t *testing.T) {
	e := fixtures[4].want.Event("anthropic")
	if e.ID != "msg_01XFDUDYJgAACzvnptvVoYEL" || e.Provider != "anthropic" || e.TotalTokens != 31560 || e.CacheWriteTokens != 1200 {
		t.Errorf("Event = %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("the event does not validate: %v", err)
	}
}

func mustRead(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
