package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenledger/tokenledger"
)

// Messages of GET /api/tokens fixed by the contract.
const (
	msgDateRequired  = "Date parameter required for date action"
	msgInvalidAction = "Invalid action. Valid actions: today, date, history, stats, all, models, users, range"
)

// defaultHistoryDays is the days parameter when it is not given.
const defaultHistoryDays = 7

// logAnswer is the 200 answer of POST /api/tokens.
type logAnswer struct {
	Accepted    int      `json:"accepted"`
	Duplicates  int      `json:"duplicates"`
	IDs         []string `json:"ids"`
	StorageType string   `json:"storageType"`
	Degraded    bool     `json:"degraded"`
	// Costs has each event's cost and how it was priced, in request order.
	Costs []EventCost `json:"costs"`
}

// EventCost is one event's cost in the answer of POST /api/tokens.
type EventCost struct {
	Cost tokenledger.Nanos `json:"costUsd"`
	// Pricing is client, table or unpriced.
	Pricing tokenledger.PriceSource `json:"pricing"`
	// PriceKey is the price table's key that priced the event.
	PriceKey string `json:"priceKey,omitempty"`
}

// handleLog serves POST /api/tokens: one event, an array of events or
// {"events": [...]}, as uncompressed application/json of at most
// MaxBodyBytes.
func handleLog(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := checkJSONContentType(r); msg != "" {
			writeError(w, http.StatusUnsupportedMediaType, msg)
			return
		}
		if msg := checkIdentityEncoding(r); msg != "" {
			// RFC 7694: a 415 for a content coding lists the ones accepted.
			w.Header().Set("Accept-Encoding", "identity")
			writeError(w, http.StatusUnsupportedMediaType, msg)
			return
		}
		events, err := decodeBody(w, r)
		if err != nil {
			s.Service.Refused(1) // an undecodable body counts as one
		}
		var ve *tokenledger.ValidationError
		switch {
		case errors.Is(err, errBodyTooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "The body is larger than 1 MiB (1048576 bytes); send fewer events per request")
			return
		case errors.As(err, &ve):
			writeValidation(w, ve)
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "The body could not be read completely")
			return
		}
		res, err := s.Service.Log(r.Context(), events)
		if err != nil {
			s.writeServiceError(w, r, "log events", err)
			return
		}
		writeLogAnswer(w, logAnswer{
			Accepted: res.Accepted, Duplicates: res.Duplicates, IDs: res.IDs,
			StorageType: s.storageType, Degraded: res.Degraded, Costs: CostsOf(events),
		})
	})
}

// CostsOf returns the cost and price source of each prepared event.
func CostsOf(events []tokenledger.Event) []EventCost {
	costs := make([]EventCost, len(events))
	for i := range events {
		costs[i] = EventCost{Cost: events[i].Cost, Pricing: events[i].Pricing, PriceKey: events[i].PriceKey}
	}
	return costs
}

// queryParams are the parameters of GET /api/tokens.
type queryParams struct {
	action string
	date   *tokenledger.Date
	// span is the days a history, all, models, users or range answer
	// covers: the last days (defaultHistoryDays when not given) or
	// since to until.
	span tokenledger.Span
}

// actionParams lists, per action, which optional parameters it takes.
var actionParams = map[string]struct{ date, days bool }{
	"today":   {},
	"date":    {date: true},
	"history": {days: true},
	"stats":   {},
	"all":     {days: true},
	"models":  {days: true},
	"users":   {days: true},
	"range":   {days: true},
}

// queryNames are the parameters GET /api/tokens knows; cacheBuster is
// the one other name it takes, and ignores: the "_=<time>" that jQuery
// and other clients add to defeat caches (the answers are never cached
// anyway: Cache-Control no-store).
var queryNames = []string{"action", "date", "days", "since", "until"}

const cacheBuster = "_"

// parseQuery reads and checks the query of GET /api/tokens. It returns a
// *tokenledger.ValidationError (with Index -1) for a bad query. Every
// parameter must be known (a misspelt one would leave its default in
// place without a word) and given at most once; date, days, since and
// until only with the actions that use them, days not with since. The
// raw query is parsed here rather than through URL.Query, which quietly
// skips a pair it cannot decode (a bad percent escape, a ";") and would
// let a garbled parameter fall back to its default.
func (s *server) parseQuery(raw string) (queryParams, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return queryParams{}, &tokenledger.ValidationError{Index: -1, Msg: malformedQuery(err)}
	}
	var unknown []string
	for name := range q {
		if !utf8.ValidString(name) { // it could not be named back in JSON
			return queryParams{}, &tokenledger.ValidationError{Index: -1, Msg: "a parameter name in the query is not valid UTF-8"}
		}
		if name != cacheBuster && !slices.Contains(queryNames, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 { // the same answer every time: the first by name
		slices.Sort(unknown)
		return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: unknown[0],
			Msg: "is not a parameter of GET /api/tokens, which takes action, date, days, since and until (see docs/api.md)"}
	}
	for _, name := range queryNames {
		if len(q[name]) > 1 {
			return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: name, Msg: "must be given at most once"}
		}
	}
	p := queryParams{action: "today"}
	if v, ok := q["action"]; ok {
		p.action = v[0]
	}
	takes, ok := actionParams[p.action]
	if !ok {
		return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: "action", Msg: msgInvalidAction}
	}
	if v, ok := q["date"]; ok {
		if !takes.date {
			return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: "date", Msg: fmt.Sprintf("is not a parameter of action %s (only of action date)", p.action)}
		}
		d, err := tokenledger.ParseDate(v[0])
		if err != nil {
			return queryParams{}, tokenledger.DateFieldError("date", err)
		}
		p.date = &d
	} else if p.action == "date" {
		return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: "date", Msg: msgDateRequired}
	}
	for _, name := range []string{"days", "since", "until"} {
		if _, ok := q[name]; ok && !takes.days {
			return queryParams{}, &tokenledger.ValidationError{Index: -1, Field: name, Msg: fmt.Sprintf("is not a parameter of action %s (only of history, all, models, users and range)", p.action)}
		}
	}
	if !takes.days {
		return p, nil
	}
	if p.span, err = s.querySpan(q); err != nil {
		return queryParams{}, err
	}
	return p, nil
}

// querySpan reads the days a report covers: days=N (default
// defaultHistoryDays), the last N days; or since=D, with until=E (default
// today), the days D to E, both within the retention window.
func (s *server) querySpan(q url.Values) (tokenledger.Span, error) {
	days, hasDays := q["days"]
	since, hasSince := q["since"]
	until, hasUntil := q["until"]
	switch {
	case hasDays && (hasSince || hasUntil):
		return tokenledger.Span{}, &tokenledger.ValidationError{Index: -1, Field: "days", Msg: "cannot be combined with since or until; give the last days, or the dates"}
	case hasUntil && !hasSince:
		return tokenledger.Span{}, &tokenledger.ValidationError{Index: -1, Field: "until", Msg: "needs since, the first day of the range (YYYY-MM-DD)"}
	case hasSince:
		sp := tokenledger.Span{From: tokenledger.Date(since[0]), To: s.Service.Today()}
		if hasUntil {
			sp.To = tokenledger.Date(until[0])
		}
		return sp, s.Service.CheckSpan(sp)
	}
	n := defaultHistoryDays
	if hasDays {
		var err error
		n, err = parseDays(days[0])
		if err == nil {
			err = s.Service.CheckDays(n)
		}
		if err != nil {
			return tokenledger.Span{}, &tokenledger.ValidationError{Index: -1, Field: "days", Msg: fmt.Sprintf("must be a whole number from 1 to %d, not %q", s.Service.RetentionDays()+1, truncate(days[0], 20))}
		}
	}
	return s.Service.LastDays(n)
}

// malformedQuery turns the error of url.ParseQuery into one sentence.
func malformedQuery(err error) string {
	var esc url.EscapeError
	if errors.As(err, &esc) {
		return fmt.Sprintf("the query string has a broken percent escape %q; write a literal %% as %%25", truncate(string(esc), 20))
	}
	if strings.Contains(err.Error(), "semicolon") {
		return `the query string contains ";"; separate parameters with "&" and write a literal ";" as %3B`
	}
	return "the query string cannot be decoded"
}

// parseDays accepts only plain decimal digits: no sign, no spaces, no
// fraction.
func parseDays(v string) (int, error) {
	if v == "" || len(v) > 9 || strings.Trim(v, "0123456789") != "" {
		return 0, errors.New("not a whole number")
	}
	return strconv.Atoi(v)
}

// handleQuery serves GET /api/tokens?action=….
func handleQuery(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.parseQuery(r.URL.RawQuery)
		if err != nil {
			var ve *tokenledger.ValidationError
			errors.As(err, &ve)
			// The contract fixes some sentences whole, without a field
			// name in front.
			if ve.Msg == msgInvalidAction || ve.Msg == msgDateRequired {
				encode(w, http.StatusBadRequest, errorBody{Error: ve.Msg, Field: ve.Field})
				return
			}
			writeValidation(w, ve)
			return
		}
		ctx := r.Context()
		answer := map[string]any{}
		switch p.action {
		case "today":
			answer["todayUsage"], err = s.Service.TodayUsage(ctx)
		case "date":
			answer["dateUsage"], err = s.Service.DateUsage(ctx, *p.date)
		case "history":
			answer["history"], err = s.Service.HistoryIn(ctx, p.span)
		case "stats":
			answer["stats"], err = s.Service.Stats(ctx)
		case "all":
			var all tokenledger.AllReport
			all, err = s.Service.AllIn(ctx, p.span)
			answer["todayUsage"], answer["history"], answer["stats"] = all.TodayUsage, all.History, all.Stats
		case "models":
			answer["models"], err = s.Service.ModelsIn(ctx, p.span)
		case "users":
			answer["users"], err = s.Service.UsersIn(ctx, p.span)
		case "range":
			var rg tokenledger.RangeReport
			rg, err = s.Service.RangeIn(ctx, p.span)
			answer["todayUsage"], answer["history"], answer["stats"] = rg.TodayUsage, rg.History, rg.Stats
			answer["models"], answer["users"] = rg.Models, rg.Users
		}
		if err != nil {
			s.writeServiceError(w, r, "read "+p.action, err)
			return
		}
		answer["environment"] = s.environment()
		answer["timestamp"] = s.timestamp()
		encode(w, http.StatusOK, answer)
	})
}

// resetTimeout bounds one reset: a store that never finishes (a database
// answering SCAN wrongly) must not hold the request forever, and after the
// server's write timeout (60 s) the answer could not be sent anyway. A
// reset cut short deletes part of the data; the admin retries.
var resetTimeout = 50 * time.Second

// handleReset serves DELETE /api/tokens. requireKey lets it run only with
// the admin key (routes.go); every reset is logged.
func handleReset(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), resetTimeout)
		defer cancel()
		if err := s.Service.Reset(ctx); err != nil {
			s.writeServiceError(w, r, "reset", err)
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "🗑️ All token usage data has been reset", slog.String("remote", r.RemoteAddr))
		encode(w, http.StatusOK, map[string]string{
			"message":   "All token usage data has been reset",
			"timestamp": s.timestamp(),
		})
	})
}
