package kvrest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/redis"
	"github.com/tokenledger/tokenledger/store/redis/kvrest"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// scripted answers request i with answers[i] (the last one again when it
// runs out) and records what it received. It stands in for answers the
// REST front never gives (a 429, a redirect, a garbled 200), to test how
// the client classifies them.
type scripted struct {
	mu      sync.Mutex
	answers []answerSpec
	got     []string // "METHOD PATH AUTH CONTENT-TYPE BODY"
}

type answerSpec struct {
	status int
	body   string
	header map[string]string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("Content-Type")+" "+string(b))
	a := s.answers[min(len(s.got), len(s.answers))-1]
	s.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (s *scripted) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func TestClientAnswers(t *testing.T) {
	const token = "AXtok"
	for _, tc := range []struct {
		name     string
		answers  []answerSpec
		cmds     [][]any
		want     []any
		wantErr  string // part of the error; "" for success
		requests int
	}{
		{"one command", []answerSpec{{200, `{"result":"OK"}`, nil}}, [][]any{{"SET", "k", int64(5)}}, []any{"OK"}, "", 1},
		{"pipeline", []answerSpec{{200, `[{"result":1},{"error":"ERR bad"}]`, nil}}, [][]any{{"INCR", "k"}, {"INCR", "k"}}, []any{int64(1), redis.ReplyError("ERR bad")}, "", 1},
		{"400 of one command is its reply", []answerSpec{{400, `{"error":"NOSCRIPT No matching script."}`, nil}}, [][]any{{"EVALSHA", "x", "0"}}, []any{redis.ReplyError("NOSCRIPT No matching script.")}, "", 1},
		{"400 of a pipeline fails every command", []answerSpec{{400, `{"error":"ERR max request size exceeded"}`, nil}}, [][]any{{"GET", "a"}, {"GET", "b"}}, []any{redis.ReplyError("ERR max request size exceeded"), redis.ReplyError("ERR max request size exceeded")}, "", 1},
		{"400 without a JSON error is final", []answerSpec{{400, `bad`, nil}}, [][]any{{"GET", "a"}}, nil, "answered 400 Bad Request: bad", 1},
		{"429 is retried after Retry-After", []answerSpec{{429, `{"error":"slow down"}`, map[string]string{"Retry-After": "0"}}, {200, `{"result":"OK"}`, nil}}, [][]any{{"PING"}}, []any{"OK"}, "", 2},
		{"a Retry-After past the timeout gives up", []answerSpec{{503, `{"error":"busy"}`, map[string]string{"Retry-After": "60"}}}, [][]any{{"PING"}}, nil, "failed once, and too little time is left for another attempt: answered 503 Service Unavailable: busy", 1},
		{"500 with an empty body", []answerSpec{{500, ``, nil}}, [][]any{{"PING"}}, nil, "failed 4 times", 4},
		{"a garbled 200 is retried", []answerSpec{{200, `<html>oops</html>`, nil}, {200, `{"result":"PONG"}`, nil}}, [][]any{{"PING"}}, []any{"PONG"}, "", 2},
		{"a pipeline answer of the wrong length is retried", []answerSpec{{200, `[{"result":1}]`, nil}}, [][]any{{"GET", "a"}, {"GET", "b"}}, nil, "holds 1 results for 2 commands", 4},
		{"404 is final", []answerSpec{{404, `Not Found`, nil}}, [][]any{{"PING"}}, nil, "is the URL the database's REST URL", 1},
		{"403 is final", []answerSpec{{403, `{"error":"forbidden"}`, nil}}, [][]any{{"PING"}}, nil, "answered 403 Forbidden: forbidden", 1},
		{"a redirect is not followed", []answerSpec{{308, ``, map[string]string{"Location": "https://elsewhere.example/"}}}, [][]any{{"PING"}}, nil, `redirect to "https://elsewhere.example/"`, 1},
		{"a plan limit is final", []answerSpec{{400, `{"error":"ERR max daily request limit exceeded"}`, nil}}, [][]any{{"PING"}}, nil, "reached a limit of its plan (400 Bad Request: ERR max daily request limit exceeded)", 1},
		{"a plan limit in a 429 is final", []answerSpec{{429, `{"error":"ERR max requests limit exceeded"}`, nil}}, [][]any{{"PING"}}, nil, "ERR max requests limit exceeded", 1},
		{"a plan limit inline in a pipeline", []answerSpec{{200, `[{"result":"OK"},{"error":"ERR DB capacity quota exceeded"}]`, nil}}, [][]any{{"GET", "a"}, {"SET", "a", "b"}}, nil, "ERR DB capacity quota exceeded", 1},
		{"401 is final and ErrTokenRejected", []answerSpec{{401, `{"error":"WRONGPASS invalid or missing auth token ` + token + `"}`, nil}}, [][]any{{"PING"}}, nil, "the REST token was rejected", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{answers: tc.answers}
			hs := httptest.NewServer(s)
			defer hs.Close()
			c, err := kvrest.NewClient(kvrest.ClientOptions{URL: hs.URL + "/", Token: " " + token + "\n"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Do(context.Background(), tc.cmds)
			switch {
			case tc.wantErr == "" && (err != nil || !reflect.DeepEqual(got, tc.want)):
				t.Errorf("got %#v, %v; want %#v", got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one saying %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("error %q holds the token", err)
			}
			reqs := s.requests()
			if len(reqs) != tc.requests {
				t.Errorf("%d requests, want %d", len(reqs), tc.requests)
			}
			path := "/"
			if len(tc.cmds) > 1 {
				path = "/pipeline"
			}
			for _, r := range reqs {
				if !strings.HasPrefix(r, "POST "+path+" Bearer "+token+" application/json [") {
					t.Errorf("request %q, want POST %s with the bearer token and a JSON body", r, path)
				}
			}
			if tc.name == "one command" && reqs[0] != "POST / Bearer AXtok application/json [\"SET\",\"k\",\"5\"]" {
				t.Errorf("request %q", reqs[0])
			}
			if strings.HasPrefix(tc.name, "401") && !errors.Is(err, kvrest.ErrTokenRejected) {
				t.Errorf("err = %v, want ErrTokenRejected", err)
			}
			if strings.HasPrefix(tc.name, "a plan limit") && !errors.Is(err, kvrest.ErrQuotaExceeded) {
				t.Errorf("err = %v, want ErrQuotaExceeded", err)
			}
		})
	}
}

// TestClientBasePath: a base URL with a path keeps it for both endpoints.
func TestClientBasePath(t *testing.T) {
	s := &scripted{answers: []answerSpec{{200, `{"result":"PONG"}`, nil}, {200, `[{"result":"PONG"},{"result":"PONG"}]`, nil}}}
	hs := httptest.NewServer(s)
	defer hs.Close()
	c, err := kvrest.NewClient(kvrest.ClientOptions{URL: hs.URL + "/kv/", Token: "t", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), [][]any{{"PING"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), [][]any{{"PING"}, {"PING"}}); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 2 || !strings.HasPrefix(reqs[0], "POST /kv ") || !strings.HasPrefix(reqs[1], "POST /kv/pipeline ") {
		t.Errorf("requests %q, want POST /kv and POST /kv/pipeline", reqs)
	}
	if c.Host() != strings.TrimPrefix(hs.URL, "http://") {
		t.Errorf("Host() = %q", c.Host())
	}
}

// TestStoreQuotaUnavailable: through the store, a plan limit is an outage
// (ErrUnavailable), so the fallback spool keeps the events.
func TestStoreQuotaUnavailable(t *testing.T) {
	s := &scripted{answers: []answerSpec{{400, `{"error":"ERR max daily request limit exceeded"}`, nil}}}
	hs := httptest.NewServer(s)
	defer hs.Close()
	st, err := redis.NewKVRest(redis.KVRestOptions{URL: hs.URL, Token: "t", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Add(context.Background(), storetest.Batch(batch("quota", 2)))
	if !errors.Is(err, tokenledger.ErrUnavailable) || !errors.Is(err, kvrest.ErrQuotaExceeded) {
		t.Errorf("Add past the plan's limit: err = %v, want ErrUnavailable and ErrQuotaExceeded", err)
	}
	wantClear(t, "Add", err, strings.TrimPrefix(hs.URL, "http://"))
}
