package filestore

import (
	"context"
	"fmt"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// Add counts every event whose (day, id) is new, after writing the new
// ones to the journal and making them durable: concurrent calls share one
// write and one fsync. It returns the context's error when ctx ends (events already
// handed to the journal may still be counted); ErrUnavailable (wrapped)
// when the journal cannot be written; ErrClosed after Close.
func (s *Store) Add(ctx context.Context, batch tokenledger.Batch) (tokenledger.AddResult, error) {
	events := batch.Events()
	if err := ctx.Err(); err != nil {
		return tokenledger.AddResult{}, err
	}
	if s.closed.Load() {
		return tokenledger.AddResult{}, tokenledger.ErrClosed
	}
	if len(events) == 0 {
		return tokenledger.AddResult{New: []bool{}}, nil
	}
	evs := make([]tokenledger.Event, len(events))
	for i := range events {
		evs[i] = events[i]
		evs[i].Metadata = nil // the file keeps no metadata (docs/file-format.md)
	}
	type answer struct {
		res tokenledger.AddResult
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := s.add(evs)
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		return tokenledger.AddResult{}, ctx.Err()
	}
}

// add is Add after validation: it claims the new events, writes them to
// the journal, counts them, and starts a compaction when one is due.
func (s *Store) add(evs []tokenledger.Event) (tokenledger.AddResult, error) {
	s.convertBeforeFirstWrite(evs)
	s.wmu.RLock()
	res, due, err := s.addShared(evs)
	s.wmu.RUnlock()
	if due {
		s.maybeCompact()
	}
	return res, err
}

// addShared is add with wmu held shared. due reports that the journal has
// grown past the compaction threshold.
func (s *Store) addShared(evs []tokenledger.Event) (res tokenledger.AddResult, due bool, err error) {
	if s.closed.Load() {
		return res, false, tokenledger.ErrClosed
	}
	s.smu.Lock()
	broken := s.broken
	s.smu.Unlock()
	if broken != nil {
		return res, false, broken
	}
	res.New = make([]bool, len(evs))
	t := &ticket{done: make(chan struct{})}
	fresh, waits, err := s.claim(evs, res.New, t)
	if err != nil {
		return tokenledger.AddResult{}, false, fmt.Errorf("add to file store: %w", err)
	}
	if len(fresh) == 0 {
		close(t.done)
	} else {
		written, werr := s.write(fresh)
		s.settle(fresh, written, werr, t)
		if werr != nil {
			return tokenledger.AddResult{}, false, werr
		}
		due = s.compactionDue()
	}
	for _, w := range waits {
		<-w.done
		if w.err != nil {
			return tokenledger.AddResult{}, due, w.err
		}
	}
	return res, due, nil
}

// claim marks the events of evs whose (day, id) is neither counted nor in
// flight as new, claims them for t and returns them; waits are the Adds
// writing the others that are in flight. It refuses the whole of evs,
// claiming nothing, when the new ones would take a counter of their day
// to tokenledger.MaxCounter counting what is stored and in flight.
func (s *Store) claim(evs []tokenledger.Event, isNew []bool, t *ticket) (fresh []tokenledger.Event, waits []*ticket, err error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	f := &s.inflight
	for i := range evs {
		e := &evs[i]
		d := e.Day()
		k := dayID{d, e.ID}
		if s.agg.Has(d, e.ID) {
			continue
		}
		if c, ok := f.claims[k]; ok {
			if c.t != t {
				waits = append(waits, c.t)
			}
			continue
		}
		c := f.reserved[d]
		if c == nil {
			c = s.agg.Counters(d)
		}
		if err := c.CountEvent(e); err != nil {
			for j := range fresh {
				f.release(&fresh[j], false, s.agg.Counters)
			}
			clear(isNew)
			return nil, nil, err
		}
		f.reserved[d] = c
		f.perDay[d]++
		f.claims[k] = claim{t, e}
		isNew[i] = true
		fresh = append(fresh, *e)
	}
	return fresh, waits, nil
}

// write appends fresh to the journal in lines of at most maxLineEvents
// events, each durable before the next is written, and returns how many
// events are durable. wmu is held shared.
func (s *Store) write(fresh []tokenledger.Event) (int, error) {
	w, err := s.writer()
	if err != nil {
		return 0, err
	}
	var payload []byte
	for start := 0; start < len(fresh); start += maxLineEvents {
		part := fresh[start:min(start+maxLineEvents, len(fresh))]
		payload = appendBatch(payload[:0], part)
		if err := w.Append(context.Background(), payload); err != nil {
			return start, s.writeError(w, err)
		}
		s.smu.Lock()
		s.unfolded += int64(len(payload)) + 10 // checksum, space, newline
		s.smu.Unlock()
	}
	return len(fresh), nil
}

// writer returns the active journal, creating it on its first line; wmu
// is held shared.
func (s *Store) writer() (*journal.Writer, error) {
	s.omu.Lock()
	defer s.omu.Unlock()
	if s.w != nil {
		return s.w, nil
	}
	if s.seq > maxJournalSeq {
		return nil, unavailable("the journal numbers of %s are used up (the next would be above 2^63); stop tokenledger, move the file's journals aside and set its \"foldedJournal\" to 0", s.path)
	}
	w, err := journal.OpenWriter(journalName(s.path, s.seq), 0)
	if err != nil {
		return nil, writeFailed(err, "create journal: %w", err)
	}
	s.w = w
	return w, nil
}

// writeError turns a failed append into the error Add returns. After a
// failed fsync the state of the written data is unknown: the store is
// broken and every later write fails.
func (s *Store) writeError(w *journal.Writer, err error) error {
	if w.Err() == nil {
		return writeFailed(err, "%w", err)
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.broken == nil {
		s.broken = unavailable("%w; the store must be reopened", err)
	}
	return s.broken
}

// settle counts the first written events of fresh, which are durable,
// releases the claims on the others, and closes t with err.
func (s *Store) settle(fresh []tokenledger.Event, written int, err error, t *ticket) {
	s.amu.Lock()
	defer s.amu.Unlock()
	for i := range fresh {
		if i < written {
			s.agg.Apply(&fresh[i]) // fitted when claimed
		}
		s.inflight.release(&fresh[i], i < written, s.agg.Counters)
	}
	t.err = err
	close(t.done)
}
