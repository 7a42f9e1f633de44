package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/internal/httpapi"
	"github.com/tokenledger/tokenledger/internal/metrics"
	"github.com/tokenledger/tokenledger/internal/proxy"
)

// newProxy builds the recording proxy over svc: each response's usage is
// logged like a POST /api/tokens (through the spool while the database
// is down).
func newProxy(cfg config.ProxyConfig, svc *tokenledger.Service, met *metrics.Metrics, log *slog.Logger) (*proxy.Proxy, error) {
	ups, err := proxy.Upstreams(cfg.Overrides, cfg.Extra)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256 // an app's many concurrent calls reuse their connections
	return proxy.New(proxy.Options{
		Upstreams: ups,
		Record: func(ctx context.Context, e tokenledger.Event) error {
			_, err := svc.Log(ctx, []tokenledger.Event{e})
			return err
		},
		WriteError: httpapi.WriteError,
		Logger:     log,
		Transport:  tr,
		Observe:    met.Proxied,
	}), nil
}
