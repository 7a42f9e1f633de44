package kvresttest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenledger/tokenledger/internal/testkit/kvresttest"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// front starts a front over the shared redis-server.
func front(t *testing.T) *kvresttest.Server {
	t.Helper()
	return kvresttest.Start(t, redistest.Shared(t).Addr(), kvresttest.Options{})
}

// post sends body to path with the given headers (Content-Type
// application/json and the standard token unless overridden) and returns
// the status and the body.
func post(t *testing.T, f *kvresttest.Server, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.Token())
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// tryPost is post that returns the transport error instead of failing.
func tryPost(f *kvresttest.Server, path, body string) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, f.URL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.Token())
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return resp.StatusCode, err
}

func TestRepliesMapAsUpstash(t *testing.T) {
	f := front(t)
	k := redistest.Prefix()
	for _, tc := range []struct {
		body       string
		wantStatus int
		want       string
	}{
		{`["SET","` + k + `:s","bar"]`, 200, `{"result":"OK"}`},
		{`["GET","` + k + `:s"]`, 200, `{"result":"bar"}`},
		{`["GET","` + k + `:missing"]`, 200, `{"result":null}`},
		{`["INCRBY","` + k + `:n",41]`, 200, `{"result":41}`},
		{`["INCRBY","` + k + `:n","1"]`, 200, `{"result":42}`},
		{`["HSET","` + k + `:h","f","<&>\u00e9\n"]`, 200, `{"result":1}`},
		{`["HGETALL","` + k + `:h"]`, 200, `{"result":["f","<&>é\n"]}`},
		{`["EVAL","return {1,'a',false}","0"]`, 200, `{"result":[1,"a",null]}`},
		{`["GET","` + k + `:h"]`, 400, `{"error":"WRONGTYPE Operation against a key holding the wrong kind of value"}`},
		{`["NOSUCHCOMMAND"]`, 400, `{"error":"ERR unknown command 'NOSUCHCOMMAND', with args beginning with: "}`},
		{`["MULTI"]`, 400, `{"error":"ERR Command is not available: 'multi'. See https://upstash.com/docs/redis/overall/rediscompatibility for details"}`},
	} {
		status, got := post(t, f, "/", tc.body, nil)
		if status != tc.wantStatus || got != tc.want {
			t.Errorf("POST / %s: got %d %s, want %d %s", tc.body, status, got, tc.wantStatus, tc.want)
		}
	}
}

func TestPipelineErrorsInline(t *testing.T) {
	f := front(t)
	k := redistest.Prefix()
	status, got := post(t, f, "/pipeline", `[["SET","`+k+`:a","x"],["INCR","`+k+`:a"],["SETEX","`+k+`:b",13,"z"],["GET","`+k+`:b"]]`, nil)
	want := `[{"result":"OK"},{"error":"ERR value is not an integer or out of range"},{"result":"OK"},{"result":"z"}]`
	if status != 200 || got != want {
		t.Errorf("pipeline: got %d %s, want 200 %s", status, got, want)
	}
	if st := f.Stats(); st.Pipeline != 1 || st.Commands != 4 {
		t.Errorf("stats %+v, want 1 pipeline of 4 commands", st)
	}
}

func TestStrictRequests(t *testing.T) {
	f := front(t)
	wrongpass := `{"error":"WRONGPASS invalid or missing auth token"}`
	badType := `{"error":"Invalid content type. Expected application/json."}`
	for _, tc := range []struct {
		name       string
		path, body string
		hdr        map[string]string
		wantStatus int
		want       string
	}{
		{"wrong token", "/", `["PING"]`, map[string]string{"Authorization": "Bearer nope"}, 401, wrongpass},
		{"no token", "/", `["PING"]`, map[string]string{"Authorization": ""}, 401, wrongpass},
		{"not bearer", "/", `["PING"]`, map[string]string{"Authorization": "Basic " + f.Token()}, 401, wrongpass},
		{"lower-case bearer", "/", `["PING"]`, map[string]string{"Authorization": "bearer " + f.Token()}, 401, wrongpass},
		{"token with a space", "/", `["PING"]`, map[string]string{"Authorization": "Bearer  " + f.Token()}, 401, wrongpass},
		{"token in the query", "/?_token=" + f.Token(), `["PING"]`, nil, 401, wrongpass},
		{"no content type", "/", `["PING"]`, map[string]string{"Content-Type": ""}, 400, badType},
		{"form content type", "/", `["PING"]`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, badType},
		{"charset parameter", "/", `["PING"]`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 400, badType},
		{"base64 encoding asked", "/", `["PING"]`, map[string]string{"Upstash-Encoding": "base64"}, 400, `{"error":"ERR kvresttest does not implement Upstash-Encoding or Upstash-Response-Format"}`},
		{"not JSON", "/", `PING`, nil, 400, ""},
		{"empty command", "/", `[]`, nil, 400, `{"error":"ERR the body must be a non-empty JSON array"}`},
		{"boolean argument", "/", `["SET","k",true]`, nil, 400, ""},
		{"two values", "/", `["PING"]["PING"]`, nil, 400, `{"error":"ERR the body holds more than one JSON value"}`},
		{"pipeline of scalars", "/pipeline", `["PING"]`, nil, 400, `{"error":"ERR pipeline entry 1 is not an array"}`},
		{"path command", "/set/foo/bar", ``, nil, 404, ""},
		{"too large", "/", `["SET","k","` + strings.Repeat("x", kvresttest.DefaultMaxRequestBytes) + `"]`, nil, 400, `{"error":"ERR max request size exceeded"}`},
	} {
		status, got := post(t, f, tc.path, tc.body, tc.hdr)
		if status != tc.wantStatus || (tc.want != "" && got != tc.want) {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, status, got, tc.wantStatus, tc.want)
		}
		if !strings.HasPrefix(got, `{"error":`) {
			t.Errorf("%s: body %s is not an {\"error\"} object", tc.name, got)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.URL()+"/", nil)
	req.Header.Set("Authorization", "Bearer "+f.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /: status %d, want 405", resp.StatusCode)
	}
	st := f.Stats()
	if st.Commands != 0 || st.Unauthorized != 6 {
		t.Errorf("stats %+v: want no command run and 6 requests unauthorized", st)
	}
}

func TestReadOnlyToken(t *testing.T) {
	f := front(t)
	k := redistest.Prefix()
	if status, got := post(t, f, "/", `["SET","`+k+`","v"]`, nil); status != 200 {
		t.Fatalf("SET with the standard token: %d %s", status, got)
	}
	ro := map[string]string{"Authorization": "Bearer " + f.ReadOnlyToken()}
	if status, got := post(t, f, "/", `["GET","`+k+`"]`, ro); status != 200 || got != `{"result":"v"}` {
		t.Errorf("GET with the read-only token: %d %s", status, got)
	}
	for _, cmd := range []string{`["SET","` + k + `","w"]`, `["EVALSHA","0000000000000000000000000000000000000000","0"]`, `["SCAN","0"]`, `["UNLINK","` + k + `"]`, `["SCRIPT","LOAD","return 1"]`} {
		status, got := post(t, f, "/", cmd, ro)
		if status != 400 || !strings.Contains(got, "NOPERM") {
			t.Errorf("%s with the read-only token: %d %s, want 400 NOPERM", cmd, status, got)
		}
	}
	if status, got := post(t, f, "/", `["GET","`+k+`"]`, nil); got != `{"result":"v"}` {
		t.Errorf("after the refused writes: %d %s, want the value unchanged", status, got)
	}
}

func TestInjectedFaults(t *testing.T) {
	f := front(t)
	k := redistest.Prefix()
	incr := `["INCR","` + k + `"]`
	value := func() string {
		_, got := post(t, f, "/", `["GET","`+k+`"]`, nil)
		return got
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore})
	if status, got := post(t, f, "/", incr, nil); status != 503 || !strings.HasPrefix(got, `{"error":`) {
		t.Errorf("FailBefore: %d %s, want 503 with an error body", status, got)
	}
	if v := value(); v != `{"result":null}` {
		t.Errorf("FailBefore ran the command: %s", v)
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.FailAfter})
	if status, _ := post(t, f, "/", incr, nil); status != 502 {
		t.Errorf("FailAfter: status %d, want 502", status)
	}
	if v := value(); v != `{"result":"1"}` {
		t.Errorf("FailAfter did not run the command: %s", v)
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.Reject})
	if status, got := post(t, f, "/", incr, nil); status != 400 || got != `{"error":"ERR injected rejection"}` {
		t.Errorf("Reject: %d %s", status, got)
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.DropBefore})
	if _, err := tryPost(f, "/", incr); err == nil {
		t.Error("DropBefore: the request got an answer")
	}
	if v := value(); v != `{"result":"1"}` {
		t.Errorf("DropBefore ran the command: %s", v)
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.DropAfter})
	if _, err := tryPost(f, "/", incr); err == nil {
		t.Error("DropAfter: the request got an answer")
	}
	if v := value(); v != `{"result":"2"}` {
		t.Errorf("DropAfter did not run the command: %s", v)
	}

	f.Inject(kvresttest.Fault{Kind: kvresttest.Delay, Delay: 200 * time.Millisecond})
	start := time.Now()
	if status, got := post(t, f, "/", incr, nil); status != 200 || got != `{"result":3}` {
		t.Errorf("Delay: %d %s", status, got)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("Delay answered after %s, want at least 200ms", took)
	}
	if n := f.Pending(); n != 0 {
		t.Errorf("%d injected faults left", n)
	}
	st := f.Stats()
	for _, k := range []kvresttest.FaultKind{kvresttest.FailBefore, kvresttest.FailAfter, kvresttest.Reject, kvresttest.DropBefore, kvresttest.DropAfter, kvresttest.Delay} {
		if st.Faults[k] != 1 {
			t.Errorf("fault %s counted %d times, want 1", k, st.Faults[k])
		}
	}
}

func TestRandomFaults(t *testing.T) {
	f := front(t)
	f.SetRandomFaults(kvresttest.RandomFaults{FailBefore: 0.3, DropBefore: 0.2, Seed: 7})
	const n = 200
	for range n {
		_, _ = tryPost(f, "/", `["PING"]`)
	}
	st := f.Stats()
	fb, db := st.Faults[kvresttest.FailBefore], st.Faults[kvresttest.DropBefore]
	// Binomial(200, 0.3) and (200, 0.2): far outside these bounds is a bug.
	if fb < 30 || fb > 90 || db < 15 || db > 70 {
		t.Errorf("over %d requests: %d fail-before (want about 60), %d drop-before (want about 40)", n, fb, db)
	}
	if st.Commands != n-fb-db {
		t.Errorf("%d commands ran, want %d (the requests without a fault)", st.Commands, n-fb-db)
	}
	f.SetRandomFaults(kvresttest.RandomFaults{})
	f.ResetStats()
	if status, _ := tryPost(f, "/", `["PING"]`); status != 200 {
		t.Errorf("with random faults off: status %d", status)
	}
	if st := f.Stats(); st.Requests != 1 || len(st.Faults) != 0 {
		t.Errorf("after ResetStats and one request: %+v", st)
	}
	f.Inject(kvresttest.Fault{Kind: kvresttest.FailBefore}, kvresttest.Fault{Kind: kvresttest.FailBefore})
	f.SetRandomFaults(kvresttest.RandomFaults{FailBefore: 1})
	f.ClearFaults()
	if status, _ := tryPost(f, "/", `["PING"]`); status != 200 || f.Pending() != 0 {
		t.Errorf("after ClearFaults: status %d, %d faults pending", status, f.Pending())
	}
}

func TestListensOnLoopback(t *testing.T) {
	f := front(t)
	if !strings.HasPrefix(f.Host(), "127.0.0.1:") {
		t.Errorf("front listens on %s, want 127.0.0.1", f.Host())
	}
	if f.Token() == f.ReadOnlyToken() || f.Token() == "" {
		t.Errorf("tokens %q and %q", f.Token(), f.ReadOnlyToken())
	}
}

// TestLargeReply: a reply of a few megabytes comes back whole.
func TestLargeReply(t *testing.T) {
	f := front(t)
	k := redistest.Prefix()
	big := strings.Repeat("y", 900_000)
	var cmds [][]string
	for i := range 4 {
		cmds = append(cmds, []string{"SET", k + string(rune('a'+i)), big})
	}
	for _, c := range cmds {
		b, _ := json.Marshal(c)
		if status, got := post(t, f, "/", string(b), nil); status != 200 {
			t.Fatalf("SET: %d %.100s", status, got)
		}
	}
	status, got := post(t, f, "/", `["MGET","`+k+`a","`+k+`b","`+k+`c","`+k+`d"]`, nil)
	var r struct{ Result []string }
	if err := json.NewDecoder(bytes.NewReader([]byte(got))).Decode(&r); err != nil || status != 200 || len(r.Result) != 4 || r.Result[3] != big {
		t.Errorf("MGET of 3.6 MB: status %d, err %v, %d values", status, err, len(r.Result))
	}
}
