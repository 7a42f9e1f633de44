// Package pricing prices usage events from a table of per-token rates in
// LiteLLM's price-file format: the table tokenledger ships (embedded) and,
// optionally, a user's file whose models replace or add to it. The rules
// (token buckets, long context, fallbacks, model lookup) are the contract
// in docs/api.md, section Cost.
package pricing

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

//go:embed data/model_prices_and_context_window.json
var builtinJSON []byte

// Sources of a model's rates.
const (
	SourceBuiltin = "built-in"
	SourceFile    = "file"
)

// MaxFileBytes bounds a user's price file (LiteLLM's full file is about
// 1.5 MB).
const MaxFileBytes = 32 << 20

// sampleSpec is the documentation entry of LiteLLM's file, which is not a
// model; it is skipped so that users' files load as LiteLLM ships them.
const sampleSpec = "sample_spec"

// bucket is one kind of token the rates price. The buckets never overlap.
type bucket int

const (
	bInput      bucket = iota // prompt tokens neither read from nor written to a cache
	bCacheRead                // cacheReadTokens
	bCacheWrite               // cacheWriteTokens
	bOutput                   // completion tokens that are not reasoning
	bReasoning                // reasoningTokens
	nBuckets
)

// bucketFields are the LiteLLM fields of each bucket's rate.
var bucketFields = [nBuckets]string{
	"input_cost_per_token", "cache_read_input_token_cost", "cache_creation_input_token_cost",
	"output_cost_per_token", "output_cost_per_reasoning_token",
}

// bucketNames are the buckets' names in the API.
var bucketNames = [nBuckets]string{"input", "cacheRead", "cacheWrite", "output", "reasoning"}

// fallbackOf is the bucket whose rate a bucket without its own takes:
// cached input the input rate, reasoning the output rate.
var fallbackOf = [nBuckets]bucket{bInput, bInput, bInput, bOutput, bOutput}

// tierField matches a long-context rate: "<bucket field>_above_<N>k_tokens".
var tierField = regexp.MustCompile(`^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost|output_cost_per_reasoning_token)_above_([1-9][0-9]{0,5})k_tokens$`)

// rawRates are the rates one model's entry sets, by tier threshold (0 for
// the base tier) and bucket.
type rawRates map[int64]*[nBuckets]*decimal

// Table is a set of models' rates with an index for lookups. It is
// immutable after Load or Parse and safe for concurrent use.
type Table struct {
	models map[string]*Model // by key
	folded map[string]*Model // by lower-case key
	bare   map[string]*Model // "provider/name" keys, by name
	bareF  map[string]*Model // the same, lower-case
}

// Builtin parses the embedded table.
func Builtin() (*Table, error) {
	t, err := Parse(builtinJSON, SourceBuiltin)
	if err != nil {
		return nil, fmt.Errorf("the built-in price table is broken: %w", err)
	}
	return t, nil
}

// Parse reads a price file in LiteLLM's format. source names where it
// came from (SourceBuiltin or SourceFile). A malformed file is an error of
// one sentence naming the model key and the field.
func Parse(data []byte, source string) (*Table, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("price file is larger than %d MiB", MaxFileBytes>>20)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil || top == nil {
		return nil, errors.New("price file is not a JSON object of models (model name → rates)")
	}
	if dec.More() {
		return nil, errors.New("price file has data after its JSON object")
	}
	t := &Table{models: make(map[string]*Model, len(top))}
	for key, raw := range top {
		if key == sampleSpec {
			continue
		}
		m, err := parseModel(key, raw, source)
		if err != nil {
			return nil, err
		}
		t.models[key] = m
	}
	t.index()
	return t, nil
}

// parseModel reads one entry of a price file.
func parseModel(key string, raw json.RawMessage, source string) (*Model, error) {
	if key == "" || !utf8.ValidString(key) || strings.TrimSpace(key) != key {
		return nil, fmt.Errorf("price file: key %q is not a model name (empty, not UTF-8, or with spaces around it)", shown(key))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, fmt.Errorf("price file: key %q is not a model: its value must be an object of rates", shown(key))
	}
	m := &Model{Key: key, Source: source}
	if p, ok := fields["litellm_provider"].(string); ok {
		m.Provider = p
	}
	rates := rawRates{}
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names) // the first broken field is the same on every run
	for _, f := range names {
		b, above, used := rateField(f)
		v := fields[f]
		if !used {
			if err := checkOtherCost(key, f, v); err != nil {
				return nil, err
			}
			continue
		}
		num, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("price file: model %q: field %s must be a number of US dollars per token, not %s", shown(key), f, kindOf(v))
		}
		d, err := parseDecimal(string(num))
		if err == nil && d.cmp(one) > 0 {
			err = errTooLarge
		}
		if err != nil {
			return nil, fmt.Errorf("price file: model %q: field %s %v (it is %s)", shown(key), f, err, num)
		}
		if rates[above] == nil {
			rates[above] = new([nBuckets]*decimal)
		}
		rates[above][b] = &d
	}
	m.tiers = resolve(rates)
	return m, nil
}

// rateField reports whether field f is a rate tokenledger uses, with its
// bucket and long-context threshold (0 for the base tier).
func rateField(f string) (bucket, int64, bool) {
	for b, name := range bucketFields {
		if f == name {
			return bucket(b), 0, true
		}
	}
	if m := tierField.FindStringSubmatch(f); m != nil {
		k, _ := strconv.ParseInt(m[2], 10, 64)
		for b, name := range bucketFields {
			if m[1] == name {
				return bucket(b), k * 1000, true
			}
		}
	}
	return 0, 0, false
}

// checkOtherCost refuses a negative number in a cost field tokenledger
// does not use (per image, per second, …): such a file is broken even if
// tokenledger never reads that rate. Values that are not numbers are left
// alone (some cost fields are objects).
func checkOtherCost(key, f string, v any) error {
	num, ok := v.(json.Number)
	if !ok || !strings.Contains(f, "cost") {
		return nil
	}
	if strings.HasPrefix(string(num), "-") {
		if _, err := parseDecimal(string(num)); err != nil {
			return fmt.Errorf("price file: model %q: field %s must not be negative (it is %s)", shown(key), f, num)
		}
	}
	return nil
}

// kindOf names the JSON type of a decoded value, for error messages.
// shown is a model key as a refusal names it: at most 60 characters, so
// that a sentence about a hostile key stays readable.
func shown(key string) string {
	if r := []rune(key); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return key
}

func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", truncate(x, 40))
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Merge returns a table holding t's models and o's, o's replacing t's of
// the same key whole (a user's entry is the rates they pay).
func (t *Table) Merge(o *Table) *Table {
	out := &Table{models: make(map[string]*Model, len(t.models)+len(o.models))}
	for k, m := range t.models {
		out.models[k] = m
	}
	for k, m := range o.models {
		out.models[k] = m
	}
	out.index()
	return out
}

// Len returns how many models the table holds.
func (t *Table) Len() int { return len(t.models) }

// Models returns the table's models sorted by key.
func (t *Table) Models() []*Model {
	out := make([]*Model, 0, len(t.models))
	for _, m := range t.models {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// index builds the lookup maps. Where two keys fold to the same name, a
// user's file wins over the built-in table, then the smaller key, so the
// index does not depend on map order.
func (t *Table) index() {
	t.folded = make(map[string]*Model, len(t.models))
	t.bare = map[string]*Model{}
	t.bareF = map[string]*Model{}
	put := func(idx map[string]*Model, name string, m *Model) {
		if cur, ok := idx[name]; ok && !prefer(m, cur) {
			return
		}
		idx[name] = m
	}
	for k, m := range t.models {
		put(t.folded, strings.ToLower(k), m)
		if i := strings.LastIndexByte(k, '/'); i >= 0 && i < len(k)-1 {
			put(t.bare, k[i+1:], m)
			put(t.bareF, strings.ToLower(k[i+1:]), m)
		}
	}
}

// prefer reports whether m should take an index slot held by cur.
func prefer(m, cur *Model) bool {
	if m.Source != cur.Source {
		return m.Source == SourceFile
	}
	return m.Key < cur.Key
}
