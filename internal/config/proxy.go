package config

import (
	"fmt"
	"strings"

	"github.com/tokenledger/tokenledger/internal/proxy"
)

// ProxyConfig is the recording proxy's configuration.
type ProxyConfig struct {
	// On turns the proxy on (TOKENLEDGER_PROXY, default off: a proxy
	// forwards anyone's requests to paid APIs, so it is opted into).
	On bool
	// Overrides replace the built-in upstreams' URLs
	// (TOKENLEDGER_UPSTREAM_OPENAI, …_ANTHROPIC, …_GEMINI).
	Overrides map[string]string
	// Extra are OpenAI-compatible upstreams (TOKENLEDGER_UPSTREAMS).
	Extra map[string]string
}

// loadProxy reads the proxy's variables. Upstreams set while the proxy
// is off are still checked: a typo should not wait for the day it is
// turned on.
func (c *Config) loadProxy(get func(string) string) error {
	on := get("TOKENLEDGER_PROXY")
	if on == "" {
		on = "0"
	}
	var err error
	if c.Proxy.On, err = parseBool("TOKENLEDGER_PROXY", on); err != nil {
		return err
	}
	c.Proxy.Overrides = map[string]string{}
	for name := range proxy.Builtin {
		v := "TOKENLEDGER_UPSTREAM_" + strings.ToUpper(name)
		raw := get(v)
		if raw == "" {
			continue
		}
		if _, err := proxy.ParseBase(v, raw); err != nil {
			return err
		}
		c.Proxy.Overrides[name] = raw
	}
	if c.Proxy.Extra, err = proxy.ParseExtra(get("TOKENLEDGER_UPSTREAMS")); err != nil {
		return err
	}
	if _, err := proxy.Upstreams(c.Proxy.Overrides, c.Proxy.Extra); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}
