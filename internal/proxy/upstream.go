package proxy

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/tokenledger/tokenledger/capture"
)

// Upstream is a provider API the proxy forwards to.
type Upstream struct {
	Name string
	Base *url.URL
	Kind capture.Kind
}

// Builtin are the providers' public base URLs, by name.
var Builtin = map[string]string{
	"openai":    "https://api.openai.com",
	"anthropic": "https://api.anthropic.com",
	"gemini":    "https://generativelanguage.googleapis.com",
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// ParseBase checks that raw is a base URL the proxy can forward to: http
// or https, a host, no credentials, query or fragment. what names the
// setting in the error.
func ParseBase(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return nil, fmt.Errorf("%s: %q is not an http:// or https:// URL with a host", what, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s: the URL must not hold credentials (the app's own key is forwarded)", what)
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?"):
		return nil, fmt.Errorf("%s: the URL must not have a query or a fragment", what)
	}
	return u, nil
}

// ParseExtra reads TOKENLEDGER_UPSTREAMS: name=URL pairs separated by
// commas, each an OpenAI-compatible API.
func ParseExtra(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, raw, ok := strings.Cut(pair, "=")
		name = strings.TrimSpace(name)
		what := fmt.Sprintf("TOKENLEDGER_UPSTREAMS entry %q", pair)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s is not name=URL", what)
		case !nameRE.MatchString(name):
			return nil, fmt.Errorf("%s: the name must be 1 to 40 lower-case letters, digits, - or _", what)
		case Builtin[name] != "":
			return nil, fmt.Errorf("%s: %s is built in; set TOKENLEDGER_UPSTREAM_%s to change its URL", what, name, strings.ToUpper(name))
		case out[name] != "":
			return nil, fmt.Errorf("%s: %s is named twice", what, name)
		}
		if _, err := ParseBase(what, strings.TrimSpace(raw)); err != nil {
			return nil, err
		}
		out[name] = strings.TrimSpace(raw)
	}
	return out, nil
}

// Upstreams returns the built-in upstreams with the overrides and the
// extra OpenAI-compatible ones (name → base URL, already checked).
func Upstreams(overrides, extra map[string]string) (map[string]Upstream, error) {
	out := map[string]Upstream{}
	for name, raw := range Builtin {
		if o := overrides[name]; o != "" {
			raw = o
		}
		u, err := ParseBase("upstream "+name, raw)
		if err != nil {
			return nil, err
		}
		kind, _ := capture.ParseKind(name)
		out[name] = Upstream{Name: name, Base: u, Kind: kind}
	}
	for name, raw := range extra {
		u, err := ParseBase("upstream "+name, raw)
		if err != nil {
			return nil, err
		}
		out[name] = Upstream{Name: name, Base: u, Kind: capture.OpenAI}
	}
	return out, nil
}

func names(ups map[string]Upstream) string {
	var n []string
	for k := range ups {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}
