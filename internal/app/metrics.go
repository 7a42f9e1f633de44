package app

import (
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/store/fallback"
)

// newMetrics returns the process's metrics, with the spool's gauges when
// a fallback spool fronts the database.
func newMetrics(cfg config.Config, fb *fallback.Store) *metrics.Metrics {
	o := metrics.Options{MaxModels: cfg.MetricsMaxModels}
	if fb != nil {
		o.Fallback = fb.FallbackStatus
	}
	return metrics.New(o)
}
