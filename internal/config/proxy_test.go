package config

import (
	"strings"
	"testing"
)

func TestProxy(t *testing.T) {
	c, err := Load(env(map[string]string{
		"TOKENLEDGER_PROXY": "1", "TOKENLEDGER_UPSTREAM_OPENAI": "http://127.0.0.1:9000",
		"TOKENLEDGER_UPSTREAMS": "groq=https://api.groq.com/openai, local=http://127.0.0.1:8000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Proxy.On || c.Proxy.Overrides["openai"] != "http://127.0.0.1:9000" || c.Proxy.Extra["groq"] != "https://api.groq.com/openai" || c.Proxy.Extra["local"] != "http://127.0.0.1:8000" {
		t.Errorf("proxy config = %+v", c.Proxy)
	}
	if c, _ := Load(env(nil)); c.Proxy.On {
		t.Error("the proxy is on by default")
	}
	for kv, want := range map[string]string{
		"TOKENLEDGER_PROXY=yes":                                   `TOKENLEDGER_PROXY must be 1 or 0`,
		"TOKENLEDGER_UPSTREAM_ANTHROPIC=api.anthropic.com":        `TOKENLEDGER_UPSTREAM_ANTHROPIC: "api.anthropic.com" is not an http:// or https:// URL with a host`,
		"TOKENLEDGER_UPSTREAM_GEMINI=https://u:p@example.com":     "TOKENLEDGER_UPSTREAM_GEMINI: the URL must not hold credentials",
		"TOKENLEDGER_UPSTREAM_OPENAI=https://example.com/v1?x=1":  "TOKENLEDGER_UPSTREAM_OPENAI: the URL must not have a query",
		"TOKENLEDGER_UPSTREAMS=groq":                              `TOKENLEDGER_UPSTREAMS entry "groq" is not name=URL`,
		"TOKENLEDGER_UPSTREAMS=Groq=https://x.example":            "the name must be 1 to 40 lower-case letters",
		"TOKENLEDGER_UPSTREAMS=openai=https://x.example":          "openai is built in; set TOKENLEDGER_UPSTREAM_OPENAI",
		"TOKENLEDGER_UPSTREAMS=a=https://x.example,a=http://y.io": "a is named twice",
		"TOKENLEDGER_UPSTREAMS=a=ftp://x.example":                 "is not an http:// or https:// URL",
		"TOKENLEDGER_METRICS_MAX_MODELS=0":                        "TOKENLEDGER_METRICS_MAX_MODELS must be a whole number from 1 to 10000",
	} {
		name, value, _ := strings.Cut(kv, "=")
		_, err := Load(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", kv, err, want)
		}
	}
}
