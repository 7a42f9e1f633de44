package app

import (
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/metrics"
)

// newMetrics returns the process's metrics.
func newMetrics(cfg config.Config) *metrics.Metrics {
	return metrics.New(metrics.Options{MaxModels: cfg.MetricsMaxModels})
}
