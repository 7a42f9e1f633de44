package kvrest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// replyTransport answers every request with one status and body, and
// remembers the last request body.
type replyTransport struct {
	status int
	body   []byte
}

func (rt *replyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: rt.status, Status: http.StatusText(rt.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(rt.body)),
		ContentLength: int64(len(rt.body)), Request: r,
	}, nil
}

const fuzzToken = "FUZZ-TOKEN-d41d8cd98f00b204"

// FuzzStoreReplies runs every Store operation against a REST API that
// answers anything (any status, any body): a broken or hostile database
// must not crash the service, hang it, or get the token into an error.
// Each operation returns within its timeout, with an error or a result;
// days read are inside the window asked for.
func FuzzStoreReplies(f *testing.F) {
	for _, s := range []struct {
		status uint16
		body   string
	}{
		{200, `{"result":"OK"}`}, {200, `[{"result":"OK"},{"result":1}]`}, {200, `{"result":["0",[]]}`},
		{200, `{"result":["1",["tokenledger:{2026-11-27}:t"]]}`}, {200, `{"result":[["promptTokens","5","requestCount","1"]]}`},
		{200, `[{"result":["requestCount","2","totalTokens","-7","m:gpt":"x"]},{"result":3}]`},
		{200, `{"result":[1,[2,[3]],"x",null]}`}, {400, `{"error":"NOSCRIPT No matching script."}`},
		{400, `{"error":"ERR wrong token FUZZ-TOKEN-d41d8cd98f00b204"}`}, {401, `{"error":"Unauthorized"}`},
		{429, `{"error":"ERR max daily request limit exceeded"}`}, {500, `oops FUZZ-TOKEN-d41d8cd98f00b204`},
		{302, ``}, {200, ``}, {200, `{"result":"` + strings.Repeat("é", 120) + `"}`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		if status < 100 || status > 599 {
			status = 200
		}
		rt := &replyTransport{status: int(status), body: body}
		st, err := redis.NewKVRest(redis.KVRestOptions{
			URL: "https://kv.example.test", Token: fuzzToken, Timeout: 2 * time.Second, MaxAttempts: 1,
			HTTPClient: &http.Client{Transport: rt}, Logger: log, Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		check := func(op string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			msg := err.Error()
			if strings.Contains(msg, fuzzToken) {
				t.Fatalf("%s: the error shows the token: %s", op, msg)
			}
			if !utf8.ValidString(msg) {
				t.Fatalf("%s: the error is not valid UTF-8: %q", op, msg)
			}
		}
		// Every operation must end by itself; the deadline is a safety net
		// that turns a loop on a hostile reply into a failure.
		run := func(op string, fn func(ctx context.Context) error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := fn(ctx)
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("%s took %v on a reply of %d bytes (status %d)", op, took, len(body), status)
			}
			check(op, err)
		}
		from, to := tokenledger.DateOf(now).AddDays(-6), tokenledger.DateOf(now)
		run("Days", func(ctx context.Context) error {
			days, err := st.Days(ctx, tokenledger.DayQuery{From: from, To: to, Users: true})
			for _, d := range days {
				if d.Date < from || d.Date > to {
					t.Fatalf("Days(%s..%s) returned %s", from, to, d.Date)
				}
			}
			return err
		})
		run("Add", func(ctx context.Context) error {
			_, err := st.Add(ctx, storetest.Batch([]tokenledger.Event{{ID: "e1", Timestamp: now, Model: "m", PromptTokens: 1, TotalTokens: 1}}))
			return err
		})
		run("Check", st.Check)
		run("Reset", st.Reset)
	})
}
