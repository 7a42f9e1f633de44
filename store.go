package tokenledger

import (
	"context"
	"time"
)

// Store keeps daily aggregates of usage events. Implementations are safe
// for concurrent use by many goroutines (and, where the backend allows it,
// by many processes). A Store knows how to add events and how to read days;
// every report is computed from the days by the Service.
type Store interface {
	// Add counts every event whose ID has not been counted before within
	// its UTC day, and reports per event whether it was new. A Batch has
	// passed every rule already (Service.ValidateAndPrice, StoredBatch), so
	// a Store checks no event again. Add is idempotent: adding the same events again counts nothing twice.
	// On error it returns ErrUnavailable (wrapped) when the backend could
	// not be reached, or the context's error when ctx ended; some events may
	// then have been counted and some not, and retrying the same events is
	// the way to finish — never to double count.
	Add(ctx context.Context, batch Batch) (AddResult, error)

	// Days returns the days in [q.From, q.To] that hold usage, oldest
	// first; days without usage may be left out. Each Day has Models set
	// and, when q.Users is true, Users. On error it returns ErrUnavailable
	// (wrapped) when the backend could not be reached, the context's error
	// when ctx ended, or another wrapped error when stored data cannot be
	// read; it never returns partial days with a nil error.
	Days(ctx context.Context, q DayQuery) ([]Day, error)

	// Reset deletes all usage data of this store (and nothing else). On
	// error some data may remain; it returns ErrUnavailable (wrapped) when
	// the backend could not be reached.
	Reset(ctx context.Context) error

	// Check makes a real write and read against the backend, without
	// touching usage data, and returns nil when both work. Otherwise it
	// returns an error that says which backend and what failed.
	Check(ctx context.Context) error

	// Close flushes what is buffered and releases the store's resources.
	// It returns an error when buffered data could not be made durable.
	// After Close every method returns ErrClosed.
	Close() error
}

// DayQuery selects days from a Store.
type DayQuery struct {
	// From and To bound the days returned, both inclusive.
	From, To Date
	// Users asks for per-user totals (Day.Users), which cost more to read.
	Users bool
}

// AddResult says what Add did with each event.
type AddResult struct {
	// New has one entry per event, in order: true when the event was
	// counted by this call, false when its ID had been counted before.
	New []bool
	// Degraded is true when the events were kept in a durable local spool
	// instead of the database, to be delivered later; New is then true for
	// every spooled event, and duplicates are resolved on delivery.
	Degraded bool
}

// Accepted returns how many events were newly counted (or spooled).
func (r AddResult) Accepted() int {
	n := 0
	for _, v := range r.New {
		if v {
			n++
		}
	}
	return n
}

// Duplicates returns how many events had been counted before.
func (r AddResult) Duplicates() int { return len(r.New) - r.Accepted() }

// StoreInfo describes a store for GET /api/test and the startup log line.
// It never holds a secret.
type StoreInfo struct {
	// Kind is "file", "memory", "redis" or "kv-rest".
	Kind string
	// Database is true for a shared database (storageType "database"),
	// false for local storage (storageType "file-system").
	Database bool
	// Cluster is true for a Redis Cluster.
	Cluster bool
	// Location says where the data lives, with credentials removed: a
	// file path, or a host and port.
	Location string
}

// Describer is implemented by stores that can describe themselves.
type Describer interface {
	Info() StoreInfo
}

// Unwrapper is implemented by decorating stores (such as the fallback
// spool) to expose the store they wrap.
type Unwrapper interface {
	Unwrap() Store
}

// FindStore returns st, or the first store it wraps (through Unwrapper), that
// is a T: how a decorator's caller reaches an optional interface, such as
// Describer, of the store underneath.
func FindStore[T any](st Store) (T, bool) {
	for st != nil {
		if t, ok := st.(T); ok {
			return t, true
		}
		u, ok := st.(Unwrapper)
		if !ok {
			break
		}
		st = u.Unwrap()
	}
	var zero T
	return zero, false
}

// Clock returns the current time. Tests inject a fixed or stepping clock.
type Clock func() time.Time
