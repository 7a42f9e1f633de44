package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/store/filestore"
)

const reportUsage = `Usage: tokenledger report [--days N | --since YYYY-MM-DD [--until YYYY-MM-DD]] [--json] [--url URL]

Prints the usage of the last N days (today last, days without usage as
zeros), or of the days since to until (both included; until defaults to
today), as a table with their cost, followed by a line for each model
whose cost is incomplete (unpriced requests), or with --json as
GET /api/tokens?action=all answers it (todayUsage, history, stats; stats
cover the whole retention window).

It opens the configured store itself, which the local file allows one
process at a time: while 'tokenledger serve' runs on it, read from the
server instead with --url http://127.0.0.1:8080 (it sends
TOKENLEDGER_READ_KEY, else TOKENLEDGER_API_KEY, when set).
`

func runReport(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("report")
	verboseFlag(fs, &e)
	days := new(int)
	daysFlag := numFlag(fs, days, "days", 7, "how many `days` to show, today included (1 to retention days + 1)")
	since := fs.String("since", "", "show the days from this `date` (YYYY-MM-DD, within the retention window) instead of the last --days")
	until := fs.String("until", "", "with --since: the last `date` to show (default today, UTC)")
	url := fs.String("url", "", "read from the tokenledger serving at this `URL`, such as http://127.0.0.1:8080, instead of opening the store")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, args, reportUsage, e.stdout); err != nil {
		return err
	}
	switch {
	case daysFlag.set && (*since != "" || *until != ""):
		return usagef("report: give --days or --since (with --until), not both")
	case *until != "" && *since == "":
		return usagef("report: --until needs --since, the first day to show")
	}
	for name, v := range map[string]string{"since": *since, "until": *until} {
		if _, err := tokenledger.ParseDate(v); v != "" && err != nil {
			return usagef("report: --%s", tokenledger.DateFieldError(name, err).Error())
		}
	}
	var all tokenledger.AllReport
	var err error
	if *url != "" {
		all, err = remoteReport(ctx, e, *url, *days, *since, *until)
	} else {
		all, err = localReport(ctx, e, *days, *since, *until)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return fmt.Errorf("report: encode: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	writeTable(e.stdout, all.History)
	return nil
}

// localReport reads the report from the configured store.
func localReport(ctx context.Context, e env, days int, since, until string) (tokenledger.AllReport, error) {
	cfg, err := loadConfig(e)
	if err != nil {
		return tokenledger.AllReport{}, err
	}
	rules, err := ruleService(cfg.RetentionDays)
	if err != nil {
		return tokenledger.AllReport{}, err
	}
	var sp tokenledger.Span
	if since != "" {
		sp = tokenledger.Span{From: tokenledger.Date(since), To: tokenledger.Date(cmp.Or(until, string(rules.Today())))}
		err = rules.CheckSpan(sp)
	} else if sp, err = rules.LastDays(days); err != nil {
		return tokenledger.AllReport{}, usagef("report: --days must be a whole number from 1 to %d, not %d", cfg.RetentionDays+1, days)
	}
	if err != nil {
		return tokenledger.AllReport{}, usagef("report: --%s", err)
	}
	a, err := openApp(ctx, e, cfg, app.Options{})
	if errors.Is(err, filestore.ErrLocked) {
		return tokenledger.AllReport{}, fmt.Errorf("%w; to report while serve runs on it, read from the server: tokenledger report --url http://%s", withHint(err), cfg.Addr)
	}
	if err != nil {
		return tokenledger.AllReport{}, err
	}
	defer a.Close()
	all, err := a.Service.AllIn(ctx, sp)
	if err != nil {
		return tokenledger.AllReport{}, fmt.Errorf("report: %w", err)
	}
	return all, a.Close()
}

// remoteReport reads the report from GET /api/tokens?action=all of the
// server at url; the server checks the days against its own retention.
func remoteReport(ctx context.Context, e env, url string, days int, since, until string) (tokenledger.AllReport, error) {
	r, err := newRemote("report", url, e.getenv)
	if err != nil {
		return tokenledger.AllReport{}, err
	}
	q := neturl.Values{"action": {"all"}}
	if since != "" {
		q.Set("since", since)
		if until != "" {
			q.Set("until", until)
		}
	} else {
		q.Set("days", strconv.Itoa(days))
	}
	var all tokenledger.AllReport
	if err := r.get(ctx, "/api/tokens?"+q.Encode(), &all); err != nil {
		var re *remoteError
		if errors.As(err, &re) && re.Status == http.StatusBadRequest {
			return all, usagef("report: %s", err) // the server says which flag's value it refused
		}
		return all, fmt.Errorf("report: %w", err)
	}
	return all, nil
}

// writeTable prints days as a table with a total row, then a line for
// each model whose cost is incomplete. Unique users and sessions cannot be
// added across days, so their total is "-".
func writeTable(w io.Writer, days []tokenledger.Day) {
	rows := [][]string{{"Date", "Requests", "Prompt", "Completion", "Total", "Cost", "Users", "Sessions", "Top model"}}
	// The days' sums can pass int64 (each day's counters stay below 2^62),
	// so they are added as big integers and printed exactly.
	var sum [5]big.Int
	for _, d := range days {
		rows = append(rows, []string{string(d.Date), itoa(d.RequestCount), itoa(d.PromptTokens), itoa(d.CompletionTokens),
			itoa(d.TotalTokens), dollars(big.NewInt(int64(d.Cost))), itoa(d.UniqueUsers), itoa(d.UniqueSessions), topModel([]tokenledger.Day{d})})
		for i, n := range []int64{d.RequestCount, d.PromptTokens, d.CompletionTokens, d.TotalTokens, int64(d.Cost)} {
			sum[i].Add(&sum[i], big.NewInt(n))
		}
	}
	rows = append(rows, []string{"Total", sum[0].String(), sum[1].String(), sum[2].String(),
		sum[3].String(), dollars(&sum[4]), "-", "-", topModel(days)})
	writeRows(w, rows)
	for _, line := range incompleteCost(days) {
		fmt.Fprintln(w, line)
	}
}

// incompleteCost says, per model, how many requests of days have no cost
// from the table or the client, and how many were recorded before events
// were priced (their cost is only what the client sent).
func incompleteCost(days []tokenledger.Day) []string {
	var lines []string
	for _, m := range tokenledger.Models(days) {
		p := m.Pricing
		if p.Unpriced > 0 {
			lines = append(lines, fmt.Sprintf("cost incomplete: %d requests of model %s unpriced (not in the price table; add it with TOKENLEDGER_PRICES)", p.Unpriced, m.Model))
		}
		if before := m.RequestCount - p.Client - p.Table - p.Unpriced; before > 0 {
			lines = append(lines, fmt.Sprintf("cost incomplete: %d requests of model %s were recorded before pricing and count only the cost their client sent", before, m.Model))
		}
	}
	return lines
}

// dollars writes an amount of nano-dollars exactly, with at least two
// decimals: $0.025, $12.50, $0.000000005.
func dollars(nanos *big.Int) string {
	q, r := new(big.Int).QuoRem(nanos, big.NewInt(tokenledger.NanosPerDollar), new(big.Int))
	frac := strings.TrimRight(fmt.Sprintf("%09d", r.Int64()), "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return "$" + q.String() + "." + frac
}

// writeRows prints rows as aligned columns: the first left-aligned, the
// last after two spaces, the others right-aligned.
func writeRows(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			case i == len(r)-1:
				b.WriteString("  " + c)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// topModel is the model with the most tokens over days, "-" when none.
func topModel(days []tokenledger.Day) string {
	if m := tokenledger.Models(days); len(m) > 0 {
		return m[0].Model
	}
	return "-"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
