package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// worker is one load client: it sends single events, batches, re-sent
// requests, reads, proxied calls and OTLP exports, in a seeded random mix,
// each to a random instance, taking one of the run's rate tokens per
// request.
type worker struct {
	r      *runner
	k      int
	rng    *mrand.Rand
	seq    int
	recent []*request // acknowledged requests, to send again
}

func (w *worker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.r.tokens:
		}
		switch p := w.rng.IntN(100); {
		case p < 30:
			w.post(ctx, 1)
		case p < 55:
			w.post(ctx, 2+w.rng.IntN(19))
		case p < 65:
			w.resend(ctx)
		case p < 80:
			w.read(ctx)
		case p < 90:
			w.proxy(ctx)
		default:
			w.otlp(ctx)
		}
	}
}

// instance picks the instance of the next request.
func (w *worker) instance() int { return w.rng.IntN(len(w.r.urls)) }

// event makes a new event of this worker: its own user, one of four models.
func (w *worker) event(now time.Time) (string, *expected, map[string]any) {
	w.seq++
	id := fmt.Sprintf("soak-%s-%d-%d", w.r.run, w.k, w.seq)
	prompt, completion := int64(1+w.rng.IntN(5000)), int64(1+w.rng.IntN(2000))
	e := &expected{day: now.Format("2006-01-02"), user: fmt.Sprintf("soak-u%d", w.k), model: fmt.Sprintf("soak-m%d", w.rng.IntN(4)), tokens: prompt + completion}
	return id, e, map[string]any{"id": id, "timestamp": now.Format(time.RFC3339Nano), "model": e.model, "userId": e.user,
		"promptTokens": prompt, "completionTokens": completion, "totalTokens": prompt + completion}
}

// post sends n new events (one object, or a batch).
func (w *worker) post(ctx context.Context, n int) {
	now := time.Now().UTC()
	req := &request{path: "/api/tokens", contentType: "application/json"}
	var evs []*expected
	var objs []map[string]any
	for range n {
		id, e, obj := w.event(now)
		req.ids, evs, objs = append(req.ids, id), append(evs, e), append(objs, obj)
	}
	var body any = objs[0]
	if n > 1 {
		body = map[string]any{"events": objs}
	}
	req.body, _ = json.Marshal(body)
	status := w.r.send(ctx, w.instance(), req)
	w.r.ledger.sent(req, evs, status)
	w.remember(req, status)
}

// remember keeps an acknowledged request (the last 100) to send again.
func (w *worker) remember(req *request, status int) {
	if status != 200 {
		return
	}
	if len(w.recent) >= 100 {
		w.recent = w.recent[1:]
	}
	w.recent = append(w.recent, req)
}

// resend sends an acknowledged request again, to either instance.
func (w *worker) resend(ctx context.Context) {
	if len(w.recent) == 0 {
		w.post(ctx, 1)
		return
	}
	req := w.recent[w.rng.IntN(len(w.recent))]
	if w.r.send(ctx, w.instance(), req) == 200 {
		w.r.ledger.mu.Lock()
		w.r.ledger.resent += int64(len(req.ids))
		w.r.ledger.mu.Unlock()
	}
}

// read asks an instance for today or for all; 200 and 503 (spooled
// events still waiting, or the database down) are the right answers.
func (w *worker) read(ctx context.Context) {
	q := "action=today"
	if w.rng.IntN(2) == 0 {
		q = "action=all&days=2"
	}
	status, body, err := w.r.get(ctx, w.instance(), "/api/tokens?"+q)
	w.r.ledger.mu.Lock()
	w.r.ledger.reads[status]++
	w.r.ledger.mu.Unlock()
	switch {
	case err != nil || status == 0 || status == 503:
	case status != 200:
		w.r.ledger.fail(fmt.Sprintf("GET /api/tokens?%s answered %d: %s", q, status, oneLine(body)))
	case !json.Valid(body):
		w.r.ledger.fail(fmt.Sprintf("GET /api/tokens?%s answered 200 with a body that is not JSON: %s", q, oneLine(body)))
	}
}

// proxy makes one chat completion through the recording proxy.
func (w *worker) proxy(ctx context.Context) {
	i := w.instance()
	p := proxied{instance: i, user: fmt.Sprintf("soak-p%d", w.k), model: fmt.Sprintf("soak-proxy-m%d", w.rng.IntN(2)), start: time.Now()}
	body, _ := json.Marshal(map[string]any{"model": p.model, "messages": []map[string]string{{"role": "user", "content": strings.Repeat("hi ", 1+w.rng.IntN(50))}}})
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, _ := http.NewRequestWithContext(rctx, http.MethodPost, w.r.urls[i]+"/proxy/openai/v1/chat/completions", bytes.NewReader(body))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer sk-soak-not-a-real-key")
	hreq.Header.Set("X-Tokenledger-User", p.user)
	res, err := w.r.client.Do(hreq)
	if err == nil {
		raw, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		var ans struct {
			Model string `json:"model"`
			Usage struct {
				Prompt     int64 `json:"prompt_tokens"`
				Completion int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if rerr == nil && res.StatusCode == 200 && json.Unmarshal(raw, &ans) == nil {
			p.answered, p.tokens = true, ans.Usage.Prompt+ans.Usage.Completion
			p.model = ans.Model // the event's model is the answer's
		}
	}
	if !p.answered {
		p.model += "-2025-01-01" // what the stand-in would have answered
	}
	p.end = time.Now()
	p.day = p.end.UTC().Format("2006-01-02")
	w.r.ledger.mu.Lock()
	w.r.ledger.proxied = append(w.r.ledger.proxied, p)
	w.r.ledger.mu.Unlock()
}

// otlp exports 1 to 5 spans of provider calls (OTLP/HTTP, protobuf), each
// with its own response id, which is the event's id.
func (w *worker) otlp(ctx context.Context) {
	now := time.Now().UTC()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "soak")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	req := &request{path: "/v1/traces", contentType: "application/x-protobuf"}
	var evs []*expected
	for range 1 + w.rng.IntN(5) {
		w.seq++
		id := fmt.Sprintf("soak-%s-o%d-%d", w.r.run, w.k, w.seq)
		in, out := int64(1+w.rng.IntN(3000)), int64(1+w.rng.IntN(1000))
		e := &expected{day: now.Format("2006-01-02"), user: fmt.Sprintf("soak-o%d", w.k), model: "soak-otlp-m", tokens: in + out}
		s := spans.AppendEmpty()
		s.SetName("chat " + e.model)
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		for b := range tid {
			tid[b] = byte(w.rng.IntN(256))
		}
		for b := range sid {
			sid[b] = byte(w.rng.IntN(256))
		}
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		a := s.Attributes()
		a.PutStr("gen_ai.response.id", id)
		a.PutStr("gen_ai.request.model", e.model)
		a.PutStr("gen_ai.system", "openai")
		a.PutStr("enduser.id", e.user)
		a.PutInt("gen_ai.usage.input_tokens", in)
		a.PutInt("gen_ai.usage.output_tokens", out)
		req.ids, evs = append(req.ids, id), append(evs, e)
	}
	req.body, _ = ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	status := w.r.send(ctx, w.instance(), req)
	w.r.ledger.sent(req, evs, status)
	w.remember(req, status)
}

// send POSTs req to instance i and returns the status, 0 for no answer.
// A 4xx (other than 429) breaks the contract and is recorded as an error;
// so is a 200 whose body says it refused part of what was sent.
func (r *runner) send(ctx context.Context, i int, req *request) int {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, _ := http.NewRequestWithContext(rctx, http.MethodPost, r.urls[i]+req.path, bytes.NewReader(req.body))
	hreq.Header.Set("Content-Type", req.contentType)
	res, err := r.client.Do(hreq)
	if err != nil {
		return 0
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return 0
	}
	switch {
	case res.StatusCode == 200 && req.path == "/v1/traces":
		ans := ptraceotlp.NewExportResponse()
		if err := ans.UnmarshalProto(raw); err != nil || ans.PartialSuccess().RejectedSpans() != 0 {
			r.ledger.fail(fmt.Sprintf("POST /v1/traces answered 200 but refused spans (%v): %s", err, ans.PartialSuccess().ErrorMessage()))
			return 400
		}
	case res.StatusCode == 200:
		var ans struct{ Accepted, Duplicates int }
		if err := json.Unmarshal(raw, &ans); err != nil || ans.Accepted+ans.Duplicates != len(req.ids) {
			r.ledger.fail(fmt.Sprintf("POST %s answered 200 with %s for %d events", req.path, oneLine(raw), len(req.ids)))
		}
	case res.StatusCode >= 400 && res.StatusCode < 500:
		r.ledger.fail(fmt.Sprintf("POST %s answered %d: %s", req.path, res.StatusCode, oneLine(raw)))
	}
	return res.StatusCode
}

// get GETs path from instance i.
func (r *runner) get(ctx context.Context, i int, path string) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hreq, _ := http.NewRequestWithContext(rctx, http.MethodGet, r.urls[i]+path, nil)
	res, err := r.client.Do(hreq)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
