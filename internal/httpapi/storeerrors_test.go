package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

// brokenStore fails every call with err (or panics when panicking).
type brokenStore struct {
	tokenledger.Store
	err      error
	panics   bool
	database bool
	fallback *fallback.Status
}

func (b *brokenStore) fail() error {
	if b.panics {
		panic("boom")
	}
	return b.err
}

func (b *brokenStore) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	e := batch.Events()
	if err := b.fail(); err != nil {
		return tokenledger.AddResult{}, err
	}
	return b.Store.Add(ctx, storetest.Batch(e))
}

func (b *brokenStore) Days(ctx context.Context, q tokenledger.DayQuery) ([]tokenledger.Day, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.Store.Days(ctx, q)
}

func (b *brokenStore) Reset(ctx context.Context) error {
	if err := b.fail(); err != nil {
		return err
	}
	return b.Store.Reset(ctx)
}

func (b *brokenStore) Check(ctx context.Context) error {
	if err := b.fail(); err != nil {
		return err
	}
	return b.Store.Check(ctx)
}

func (b *brokenStore) Info() tokenledger.StoreInfo {
	if b.database {
		return tokenledger.StoreInfo{Kind: "redis", Database: true, Location: "db.example.com:6379"}
	}
	return tokenledger.StoreInfo{Kind: "file", Location: "x.json"}
}

// fallbackStore adds a spool status to brokenStore.
type fallbackStore struct{ *brokenStore }

func (f fallbackStore) FallbackStatus() fallback.Status { return *f.fallback }

func newBroken(t *testing.T, err error) *brokenStore {
	m := memstore.New(nil, 0)
	t.Cleanup(func() { _ = m.Close() })
	return &brokenStore{Store: m, err: err}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		panics bool
		status int
		msg    string
		log    string
	}{
		{"unavailable", fmt.Errorf("redis: dial db.example.com:6379: %w", tokenledger.ErrUnavailable), false, 503, msgUnavailable, "storage unavailable"},
		{"closed", tokenledger.ErrClosed, false, 503, msgUnavailable, "storage unavailable"},
		{"spooled events withheld", &tokenledger.UnavailableError{Msg: "The database is unreachable and 7 events wait in the local spool", Err: errors.New("dial tcp 10.0.0.1:6379: i/o timeout")},
			false, 503, "The database is unreachable and 7 events wait in the local spool", "i/o timeout"},
		{"timeout", fmt.Errorf("read: %w", context.DeadlineExceeded), false, 503, msgUnavailable, "storage unavailable"},
		{"corrupt data", errors.New("decode day 2026-11-27: unexpected end of JSON input"), false, 500, msgInternal, "decode day 2026-11-27: unexpected end of JSON input"},
		{"panic", nil, true, 500, msgInternal, "handler panicked"},
		{"counter overflow", fmt.Errorf("redis 10.0.0.1:6379: add 2 events: %w", &tokenledger.CounterOverflowError{Date: "2026-11-27", Counter: "costUsd"}),
			false, 400, "counter costUsd of day 2026-11-27 would overflow (reach 2^62); nothing was stored", ""},
	}
	requests := []struct{ method, target, body string }{
		{"POST", "/api/tokens", `{"model":"m"}`},
		{"GET", "/api/tokens?action=all", ""},
		{"GET", "/api/tokens?action=users", ""},
		{"DELETE", "/api/tokens", ""},
	}
	for _, tc := range tests {
		for _, rq := range requests {
			t.Run(tc.name+" "+rq.method+" "+rq.target, func(t *testing.T) {
				b := newBroken(t, tc.err)
				b.panics = tc.panics
				f := newFixtureOn(t, b)
				a := f.do(rq.method, rq.target, "application/json", rq.body, "Authorization", "Bearer "+adminKey)
				a.wantStatus(t, tc.status)
				if a.body["error"] != tc.msg {
					t.Errorf("error = %q, want %q", a.body["error"], tc.msg)
				}
				if len(a.body) != 1 {
					t.Errorf("error body %s shows more than the sentence", a.raw)
				}
				if !strings.Contains(f.logs.String(), tc.log) {
					t.Errorf("log lacks %q:\n%s", tc.log, f.logs.String())
				}
			})
		}
	}
}
