package proxy

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger/capture"
)

// FuzzRequest reads any request body as the proxy does before it forwards
// it: never a panic; a body is forwarded as it came unless the proxy asks
// for usage, and then it is the same JSON object with
// stream_options.include_usage true and every other member (and every
// other option) kept as the client wrote it.
func FuzzRequest(f *testing.F) {
	for _, b := range []string{
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false,"x":1},"user":"u"}`,
		`{"model":"gpt-4o","stream":true,"stream_options":null}`,
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"claude","metadata":{"user_id":"u"},"stream":true}`,
		`{"stream":true,"STREAM_OPTIONS":{"INCLUDE_USAGE":false},"stream_options":{}}`,
		`{"stream":true,"stream":false}`, `{"stream":"yes"}`, `[1,2]`, `not json`, ``,
	} {
		f.Add([]byte(b), "/chat/completions", uint8(0))
		f.Add([]byte(b), "/v1beta/models/gemini-2.5-flash:streamGenerateContent", uint8(2))
	}
	kinds := []capture.Kind{capture.OpenAI, capture.Anthropic, capture.Gemini}
	f.Fuzz(func(t *testing.T, body []byte, p string, kind uint8) {
		c := &call{up: Upstream{Name: "up", Kind: kinds[int(kind)%len(kinds)]}, path: p}
		in := bytes.Clone(body)
		out := c.readRequest(body)
		if !bytes.Equal(body, in) {
			t.Fatalf("readRequest changed the client's bytes")
		}
		if !c.injectedUsage {
			if !bytes.Equal(out, in) {
				t.Fatalf("the body was changed without asking for usage: %q -> %q", in, out)
			}
			return
		}
		if c.up.Kind != capture.OpenAI || !strings.HasSuffix(p, "/chat/completions") {
			t.Fatalf("usage asked of a %s call to %q", c.up.Kind, p)
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(in, &before); err != nil {
			t.Fatalf("usage asked in a body that is not a JSON object: %v", err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("the body asking for usage is not a JSON object: %v\n%s", err, out)
		}
		sameMembers(t, "the body", before, after, "stream_options")
		var opts struct {
			IncludeUsage *bool `json:"include_usage"`
		}
		if err := json.Unmarshal(after["stream_options"], &opts); err != nil || opts.IncludeUsage == nil || !*opts.IncludeUsage {
			t.Fatalf("stream_options is %s, not asking for usage", after["stream_options"])
		}
		var optsBefore, optsAfter map[string]json.RawMessage
		json.Unmarshal(before["stream_options"], &optsBefore)
		json.Unmarshal(after["stream_options"], &optsAfter)
		sameMembers(t, "stream_options", optsBefore, optsAfter, "include_usage")
		// The proxy reads what it sends as the upstream will.
		again := &call{up: c.up, path: p}
		again.readRequest(out)
		if again.injectedUsage || again.model != c.model || again.user != c.user {
			t.Fatalf("the body sent reads differently: %+v, then %+v", c, again)
		}
	})
}

// sameMembers fails unless after has every member of before but skip,
// each with the same JSON value, and no other.
func sameMembers(t *testing.T, what string, before, after map[string]json.RawMessage, skip string) {
	t.Helper()
	for k, v := range before {
		if k != skip && !jsonEqual(v, after[k]) {
			t.Fatalf("%s: member %q was %s, is %s", what, k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && k != skip {
			t.Fatalf("%s: member %q was added", what, k)
		}
	}
}

// jsonEqual compares two JSON values as values (not bytes).
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// FuzzPath sends any path below /proxy/{name}/ through the proxy's check
// and its URL building: never a panic; a path it lets through reaches
// the upstream's host, under the base path, whether the upstream decodes
// it once or twice, with nothing moved into the query or fragment.
func FuzzPath(f *testing.F) {
	for _, s := range []string{
		"chat/completions", "../admin", "x/../../y", "v1beta/models/gemini-2.5-flash:generateContent", "", "a/../b", "..;/admin", "a//b",
		`a\b`, "a%2fb", "%252e%252e/x", "a?b#c", "é/ü", "%", "a;b/c", "./x", "x/.", "...",
	} {
		f.Add(s)
	}
	bases := []string{"https://api.openai.com/v1", "http://127.0.0.1:8080", "http://127.0.0.1:8080/base%2Fx/"}
	f.Fuzz(func(t *testing.T, rest string) {
		if !safeRest(rest) {
			return
		}
		for _, raw := range bases {
			base, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			u := upstreamURL(base, rest)
			sent, err := url.Parse(u.String())
			if err != nil {
				t.Fatalf("%q: the upstream URL %q does not parse: %v", rest, u, err)
			}
			if sent.Scheme != base.Scheme || sent.Host != base.Host || sent.User != nil || sent.RawQuery != "" || sent.Fragment != "" {
				t.Fatalf("%q: the call goes to %q, not under %q", rest, sent, base)
			}
			root := strings.TrimSuffix(base.Path, "/") + "/"
			once := sent.Path
			twice, err := url.PathUnescape(once)
			if err != nil {
				twice = once // an upstream that decodes twice refuses it
			}
			for _, p := range []string{once, twice} {
				if strings.ContainsRune(p, '\\') || !strings.HasPrefix(path.Clean(p)+"/", root) {
					t.Fatalf("%q under %q: the upstream reads the path %q, outside %q", rest, base, p, root)
				}
			}
			if once != root+rest {
				t.Fatalf("%q under %q: the upstream reads %q, not %q", rest, base, once, root+rest)
			}
		}
	})
}
