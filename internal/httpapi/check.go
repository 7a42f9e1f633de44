package httpapi

import (
	"context"
	"math"
	"net/http"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/buildinfo"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/store/fallback"
)

// Values of TestReport.Status.
const (
	StatusOK       = "ok"       // the store check passed
	StatusDegraded = "degraded" // the check passed, but events are being spooled locally
	StatusError    = "error"    // the check failed
)

// TestReport is the body of GET /api/test and the output of
// `tokenledger test`. It never holds a secret.
type TestReport struct {
	Status      string          `json:"status"`
	StorageType string          `json:"storageType"`
	Database    DatabaseStatus  `json:"database"`
	Fallback    fallback.Status `json:"fallback"`
	Migration   migrate.Status  `json:"migration"`
	Environment TestEnvironment `json:"environment"`
	// Version is the running tokenledger's version (buildinfo.Version).
	Version string `json:"version"`
	// ResetEnabled is true when an admin key is configured, so that
	// DELETE /api/tokens can be allowed: the dashboard shows its Reset
	// button only then.
	ResetEnabled bool   `json:"resetEnabled"`
	Timestamp    string `json:"timestamp"`
}

// OK reports whether the store check passed (status ok or degraded).
func (r TestReport) OK() bool { return r.Status != StatusError }

// DatabaseStatus is the "database" member of a TestReport: the active
// store and the outcome of its write-and-read check.
type DatabaseStatus struct {
	// Configured is true when the active store is a database (Redis or
	// KV REST), false for the local file or memory.
	Configured bool `json:"configured"`
	// Kind is the active store's kind: file, memory, redis or kv-rest.
	Kind string `json:"kind"`
	// Cluster is true when the Redis store talks to a Redis Cluster.
	Cluster bool `json:"cluster"`
	// Connected is true when the store's check passed.
	Connected bool `json:"connected"`
	// LatencyMs is how long the check took, in milliseconds.
	LatencyMs float64 `json:"latencyMs"`
	// Error is the check's error with secrets removed, nil when it passed.
	Error *string `json:"error"`
}

// TestEnvironment is the "environment" member of a TestReport.
type TestEnvironment struct {
	IsVercel    bool    `json:"isVercel"`
	VercelEnv   *string `json:"vercelEnv"`
	Region      *string `json:"region"`
	StorageType string  `json:"storageType"`
}

// BuildTestReport checks the store of d.Service with a real write and
// read (bounded by d.CheckTimeout) and describes the result. GET /api/test
// answers it, and `tokenledger test` prints it.
func BuildTestReport(ctx context.Context, d Deps) TestReport {
	return newServer(d).testReport(ctx)
}

func (s *server) testReport(ctx context.Context) TestReport {
	ctx, cancel := context.WithTimeout(ctx, s.CheckTimeout)
	defer cancel()
	took, err := s.Service.Check(ctx)
	rep := TestReport{
		Status:      StatusOK,
		StorageType: s.storageType,
		Database: DatabaseStatus{
			Configured: s.info.Database,
			Kind:       s.info.Kind,
			Cluster:    s.info.Cluster,
			Connected:  err == nil,
			LatencyMs:  math.Round(float64(took.Microseconds())) / 1000,
		},
		Fallback: s.redactedFallback(),
		Environment: TestEnvironment{
			IsVercel:    s.Environment.IsVercel,
			VercelEnv:   nonEmpty(s.Environment.VercelEnv),
			Region:      nonEmpty(s.Environment.Region),
			StorageType: s.storageType,
		},
		Version:      buildinfo.Version(),
		ResetEnabled: s.AdminKey != "",
		Timestamp:    s.timestamp(),
	}
	if s.Migration != nil {
		rep.Migration = s.Migration()
	}
	switch {
	case err != nil:
		rep.Status = StatusError
		msg := s.redact(err.Error())
		rep.Database.Error = &msg
	case rep.Fallback.Active:
		rep.Status = StatusDegraded
	}
	return rep
}

// redactedFallback is the store's fallback status with any secret in its
// delivery error redacted, like the check's own error.
func (s *server) redactedFallback() fallback.Status {
	st := fallbackStatus(s.Service.Store())
	if st.DeliveryError != "" {
		st.DeliveryError = s.redact(st.DeliveryError)
	}
	return st
}

// fallbackReporter is a store that spools events locally while its
// database is unavailable.
type fallbackReporter interface {
	FallbackStatus() fallback.Status
}

// fallbackStatus returns the spool status of st or of a store it wraps;
// inactive and empty when none has a spool.
func fallbackStatus(st tokenledger.Store) fallback.Status {
	if f, ok := tokenledger.FindStore[fallbackReporter](st); ok {
		return f.FallbackStatus()
	}
	return fallback.Status{}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// handleTest serves GET /api/test: 200 when the store check passes, 503
// when it fails.
func handleTest(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := s.testReport(r.Context())
		status := http.StatusOK
		if !rep.OK() {
			status = http.StatusServiceUnavailable
		}
		encode(w, status, rep)
	})
}
