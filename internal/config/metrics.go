package config

import (
	"fmt"
	"strconv"
)

// loadMetrics reads TOKENLEDGER_METRICS_MAX_MODELS: how many distinct
// model label values /metrics keeps before it says "other" (default 100,
// 1 to 10,000).
func (c *Config) loadMetrics(get func(string) string) error {
	v := get("TOKENLEDGER_METRICS_MAX_MODELS")
	if v == "" {
		c.MetricsMaxModels = 100
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10_000 {
		return fmt.Errorf("TOKENLEDGER_METRICS_MAX_MODELS must be a whole number from 1 to 10000, not %q", v)
	}
	c.MetricsMaxModels = n
	return nil
}
