package pricing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tokenledger/tokenledger"
)

// Load returns the built-in table with the models of the price file at
// path (when path is not empty) replacing or adding to its own. The error
// of a malformed file is one sentence naming the file, the model key and
// the field.
func Load(path string) (*Table, error) {
	t, err := Builtin()
	if err != nil || path == "" {
		return t, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price file %s cannot be read: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("price file %s cannot be read: %w", path, err)
	}
	user, err := Parse(data, SourceFile)
	if err != nil {
		return nil, fmt.Errorf("%s (%s)", err, path)
	}
	return t.Merge(user), nil
}

// Match says how a model name found its key.
type Match struct {
	// Key is the table's key that matched.
	Key string
	// How lists the steps that were needed, in order: "exact", or some of
	// "provider prefix", "without date", "case-insensitive".
	How []string
}

// Lookup finds the model that prices events of model (sent with provider,
// which may be empty). First hit wins: the exact key; a key with a
// "provider/" prefix (the event's provider's first, then any), or the
// model's own prefix dropped; the same for the model without a trailing
// date (-YYYY-MM-DD, -YYYYMMDD, @YYYYMMDD); then all of it ignoring case.
// Each step is a map lookup: the cost does not grow with the table.
func (t *Table) Lookup(model, provider string) (*Model, Match, bool) {
	for _, fold := range [2]bool{false, true} {
		name, prov := model, provider
		exact, bare := t.models, t.bare
		if fold {
			name, prov = strings.ToLower(model), strings.ToLower(provider)
			exact, bare = t.folded, t.bareF
		}
		for _, undate := range [2]bool{false, true} {
			n := name
			if undate {
				var dated bool
				if n, dated = stripDate(name); !dated {
					continue
				}
			}
			m, prefix := find(exact, bare, n, prov)
			if m == nil {
				continue
			}
			var how []string
			if prefix {
				how = append(how, "provider prefix")
			}
			if undate {
				how = append(how, "without date")
			}
			if fold {
				how = append(how, "case-insensitive")
			}
			if how == nil {
				how = []string{"exact"}
			}
			return m, Match{Key: m.Key, How: how}, true
		}
	}
	return nil, Match{}, false
}

// find looks name up in one index: exactly, as "provider/name", as any
// "prefix/name", and with its own "prefix/" dropped.
func find(exact, bare map[string]*Model, name, provider string) (m *Model, prefix bool) {
	if m := exact[name]; m != nil {
		return m, false
	}
	if provider != "" {
		if m := exact[provider+"/"+name]; m != nil {
			return m, true
		}
	}
	if m := bare[name]; m != nil {
		return m, true
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		if m := exact[name[i+1:]]; m != nil {
			return m, true
		}
	}
	return nil, false
}

// stripDate returns model without a trailing date (-YYYY-MM-DD, -YYYYMMDD
// or @YYYYMMDD, the year from 2000) and whether it had one.
func stripDate(model string) (string, bool) {
	n := len(model)
	if n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		allDigits(model[n-10:n-6]) && allDigits(model[n-5:n-3]) && allDigits(model[n-2:]) {
		return model[:n-11], true
	}
	if n > 9 && (model[n-9] == '-' || model[n-9] == '@') && allDigits(model[n-8:]) && model[n-8] == '2' {
		return model[:n-9], true
	}
	return model, false
}

// Price implements tokenledger.Pricer: the cost of e from the table, the
// key that priced it, and ok false when the table has no model for e or
// no rate for one of its kinds of tokens.
func (t *Table) Price(e *tokenledger.Event) (tokenledger.Nanos, string, bool, error) {
	m, _, found := t.Lookup(e.Model, e.Provider)
	if !found {
		return 0, "", false, nil
	}
	cost, ok, tooLarge := m.Cost(UsageOf(e), e.PromptTokens)
	if tooLarge {
		return 0, "", false, &tokenledger.ValidationError{Index: -1, Field: "costUsd",
			Msg: fmt.Sprintf("computed from the price table (model %s) exceeds 1000000 dollars", m.Key)}
	}
	return cost, m.Key, ok, nil
}

var _ tokenledger.Pricer = (*Table)(nil)
