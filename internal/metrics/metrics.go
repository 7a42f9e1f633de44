// Package metrics is tokenledger's Prometheus surface, GET /metrics: what
// the process logged (events, tokens, cost), how its HTTP API, its store's
// fallback spool and its proxy are doing, plus Go's and the process's own
// collectors. Counters are per process, as Prometheus expects: totals come
// from the store, rates from here (docs/operations.md).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/fallback"
)

// DefaultMaxModels is how many distinct model label values a process
// keeps before it counts further models as "other".
const DefaultMaxModels = 100

// Other is the model label of every model beyond the limit.
const Other = "other"

// Metrics holds the registry and every metric tokenledger exports.
type Metrics struct {
	reg *prometheus.Registry

	events  *prometheus.CounterVec
	tokens  *prometheus.CounterVec
	cost    *prometheus.CounterVec
	httpDur *prometheus.HistogramVec
	proxied *prometheus.CounterVec

	storeDur *prometheus.HistogramVec
	storeErr *prometheus.CounterVec
	migrated prometheus.Counter

	accepted, duplicate, refused prometheus.Counter

	mu        sync.Mutex
	models    map[string]*modelSeries // at most maxModels, plus Other
	maxModels int

	httpSeries sync.Map // httpKey → prometheus.Observer
}

// modelSeries are one model label value's counters, looked up once.
type modelSeries struct {
	prompt, completion, cacheRead, cacheWrite, reasoning, cost prometheus.Counter
}

// httpKey names one series of the HTTP histogram.
type httpKey struct {
	route, method string
	code          int
}

// Options configure New.
type Options struct {
	// MaxModels bounds the model label's values; DefaultMaxModels when 0.
	MaxModels int
}

// New returns the metrics on a registry of their own, with the Go and
// process collectors.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), models: map[string]*modelSeries{}, maxModels: o.MaxModels}
	if m.maxModels <= 0 {
		m.maxModels = DefaultMaxModels
	}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenledger_events_total",
		Help: "Events this process was asked to log, by result: accepted (new), duplicate (an id already counted), refused (broken rule or undecodable body)."}, []string{"result"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenledger_tokens_total",
		Help: "Tokens of accepted events, by model and bucket (prompt and completion include their cache and reasoning parts)."}, []string{"model", "type"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenledger_cost_usd_total",
		Help: "Cost in US dollars of accepted events, by model."}, []string{"model"})
	m.httpDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tokenledger_http_request_duration_seconds",
		Help: "HTTP requests by route pattern, method and status code.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route", "method", "code"})
	m.proxied = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenledger_proxy_requests_total",
		Help: "Calls forwarded by the recording proxy, by upstream and status code."}, []string{"upstream", "code"})
	m.storeDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tokenledger_store_operation_duration_seconds",
		Help: "Calls to the store underneath (the file, or the database under the spool), by store kind and op: add, days, reset, check.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"store", "op"})
	m.storeErr = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenledger_store_errors_total",
		Help: "Store calls that failed (an outage, a timeout, data it could not read), by store kind and op."}, []string{"store", "op"})
	m.migrated = prometheus.NewCounter(prometheus.CounterOpts{Name: "tokenledger_migrated_records_total",
		Help: "Records of the local file this process migrated into the database."})
	m.accepted, m.duplicate, m.refused = m.events.WithLabelValues("accepted"), m.events.WithLabelValues("duplicate"), m.events.WithLabelValues("refused")
	m.reg.MustRegister(m.events, m.tokens, m.cost, m.httpDur, m.proxied, m.storeDur, m.storeErr, m.migrated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// WatchFallback adds the gauges of the fallback spool in front of the
// database, read from status at each scrape. Call it once, when there is
// a spool.
func (m *Metrics) WatchFallback(status func() fallback.Status) {
	gauge := func(name, help string, f func(fallback.Status) float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) })
	}
	m.reg.MustRegister(
		gauge("tokenledger_fallback_active", "1 while events go to the local spool instead of the database.", func(s fallback.Status) float64 {
			if s.Active {
				return 1
			}
			return 0
		}),
		gauge("tokenledger_spool_events", "Events waiting in the spool for the database.", func(s fallback.Status) float64 { return float64(s.PendingEvents) }),
		gauge("tokenledger_spool_rejected_events", "Spooled events the database refused; they stay in the spool.", func(s fallback.Status) float64 { return float64(s.RejectedEvents) }),
	)
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// series returns the counters of name's model label: its own while the
// process has seen fewer than MaxModels models, Other's after that for any
// new one. The caller holds m.mu.
func (m *Metrics) series(name string) *modelSeries {
	if ms := m.models[name]; ms != nil {
		return ms
	}
	label := name
	if len(m.models) >= m.maxModels {
		label = Other
		if ms := m.models[Other]; ms != nil {
			return ms
		}
	}
	tok := func(typ string) prometheus.Counter { return m.tokens.WithLabelValues(label, typ) }
	ms := &modelSeries{prompt: tok("prompt"), completion: tok("completion"), cacheRead: tok("cache_read"),
		cacheWrite: tok("cache_write"), reasoning: tok("reasoning"), cost: m.cost.WithLabelValues(label)}
	m.models[label] = ms
	return ms
}

// Logged counts a Log call's events (tokenledger.Observer).
func (m *Metrics) Logged(events []tokenledger.Event, isNew []bool) {
	var accepted int
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range events {
		if !isNew[i] {
			continue
		}
		accepted++
		e := &events[i]
		ms := m.series(e.Model)
		for _, b := range []struct {
			c prometheus.Counter
			n int64
		}{{ms.prompt, e.PromptTokens}, {ms.completion, e.CompletionTokens}, {ms.cacheRead, e.CacheReadTokens}, {ms.cacheWrite, e.CacheWriteTokens}, {ms.reasoning, e.ReasoningTokens}} {
			if b.n > 0 {
				b.c.Add(float64(b.n))
			}
		}
		if e.Cost > 0 {
			ms.cost.Add(float64(e.Cost) / 1e9)
		}
	}
	if accepted > 0 {
		m.accepted.Add(float64(accepted))
	}
	if dup := len(events) - accepted; dup > 0 {
		m.duplicate.Add(float64(dup))
	}
}

// Refused counts refused events (tokenledger.Observer).
func (m *Metrics) Refused(n int) {
	if n > 0 {
		m.refused.Add(float64(n))
	}
}

// Migrated counts n records migrated from the local file.
func (m *Metrics) Migrated(n int) { m.migrated.Add(float64(n)) }

// Proxied counts one call the proxy forwarded.
func (m *Metrics) Proxied(upstream string, code int) {
	m.proxied.WithLabelValues(upstream, strconv.Itoa(code)).Inc()
}

// ObserveHTTP records one request's duration under its route pattern
// (r.Pattern: the mux's, never the raw path, so the labels stay few).
func (m *Metrics) ObserveHTTP(route, method string, code int, took time.Duration) {
	k := httpKey{route, method, code}
	o, ok := m.httpSeries.Load(k)
	if !ok {
		o, _ = m.httpSeries.LoadOrStore(k, m.httpDur.WithLabelValues(route, method, strconv.Itoa(code)))
	}
	o.(prometheus.Observer).Observe(took.Seconds())
}
