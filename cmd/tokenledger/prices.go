package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/tokenledger/tokenledger/pricing"
)

const pricesUsage = `Usage: tokenledger prices [--model M [--provider P]] [--json]
       tokenledger prices --check FILE

Shows the price table events are priced with: the built-in table and the
models of TOKENLEDGER_PRICES. Without --model it lists every model's base
rates in US dollars per million tokens; with --model the key the name
matches, how, and every tier's rates (--json: as GET /api/prices answers).
--check validates a price file in LiteLLM's format and exits 1 with the
reason when it is malformed.
`

func runPrices(_ context.Context, args []string, e env) error {
	fs := newFlagSet("prices")
	model := fs.String("model", "", "the model `name` to look up, as events carry it")
	provider := fs.String("provider", "", "the event's `provider`, for a key with its prefix")
	asJSON := fs.Bool("json", false, "print JSON")
	check := fs.String("check", "", "validate the price `file` and exit")
	if err := parseFlags(fs, args, pricesUsage, e.stdout); err != nil {
		return err
	}
	if *check != "" {
		if *model != "" || *provider != "" || *asJSON {
			return usagef("prices: --check takes no other flag")
		}
		return checkPriceFile(*check, e)
	}
	if *provider != "" && *model == "" {
		return usagef("prices: --provider needs --model")
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return err
	}
	table, err := pricing.Load(cfg.Prices)
	if err != nil {
		return err
	}
	if *model == "" {
		if *asJSON {
			return printJSON(e, describeAll(table))
		}
		writePriceList(e, table)
		return nil
	}
	desc, ok := table.Describe(*model, *provider)
	if !ok {
		return fmt.Errorf("no price for model %q: it matches no key of the price table (%d models), so its events are recorded as unpriced; add it with TOKENLEDGER_PRICES", *model, table.Len())
	}
	if *asJSON {
		return printJSON(e, desc)
	}
	fmt.Fprintf(e.stdout, "%s → %s (%s, %s)\n", desc.Model, desc.Key, strings.Join(desc.Match, ", "), desc.Source)
	for _, t := range desc.Tiers {
		if t.AboveTokens == 0 {
			fmt.Fprintln(e.stdout, "base rates, US dollars per million tokens:")
		} else {
			fmt.Fprintf(e.stdout, "above %d prompt tokens (every bucket of the event):\n", t.AboveTokens)
		}
		for _, r := range t.Rates {
			v, from := "no rate (unpriced)", ""
			if r.USDPerMillion != nil {
				v, from = "$"+string(*r.USDPerMillion), "  from "+r.Field
			}
			fmt.Fprintf(e.stdout, "  %-10s  %s%s\n", r.Bucket, v, from)
		}
	}
	return nil
}

// checkPriceFile validates a user's price file on its own.
func checkPriceFile(path string, e env) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("price file %s cannot be read: %w", path, err)
	}
	t, err := pricing.Parse(data, pricing.SourceFile)
	if err != nil {
		return fmt.Errorf("%s (%s)", err, path)
	}
	fmt.Fprintf(e.stdout, "%s: a valid price file of %d models\n", path, t.Len())
	return nil
}

// describeAll describes every model of t by its own key.
func describeAll(t *pricing.Table) []pricing.Description {
	models := t.Models()
	out := make([]pricing.Description, 0, len(models))
	for _, m := range models {
		d, _ := t.Describe(m.Key, "")
		out = append(out, d)
	}
	return out
}

// writePriceList prints each model's base rates per million tokens.
func writePriceList(e env, t *pricing.Table) {
	rows := [][]string{{"Model", "Input", "Cache read", "Cache write", "Output", "Reasoning", "Long context", "Source"}}
	for _, d := range describeAll(t) {
		base := d.Tiers[0]
		row := []string{d.Key}
		for _, r := range base.Rates {
			c := "-"
			if r.USDPerMillion != nil {
				c = string(*r.USDPerMillion)
			}
			row = append(row, c)
		}
		long := "-"
		if n := len(d.Tiers); n > 1 {
			long = fmt.Sprintf(">%dk", d.Tiers[n-1].AboveTokens/1000)
		}
		rows = append(rows, append(row, long, d.Source))
	}
	writeRows(e.stdout, rows)
	fmt.Fprintf(e.stdout, "%d models; US dollars per million tokens; - is no rate at all: tokens of that kind leave the event unpriced (see tokenledger prices --model M)\n", t.Len())
}

// printJSON prints v as indented JSON.
func printJSON(e env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return nil
}
