package filestore

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
)

// Values of ScanResult.Format.
const (
	// FormatTokenledger is this package's format (docs/file-format.md).
	FormatTokenledger = "tokenledger"
	// FormatOriginal is the original service's JSON array of records.
	FormatOriginal = "original"
)

// DefaultScanBatch is how many events Scan hands to fn at most at once
// when ScanOptions.BatchSize is 0.
const DefaultScanBatch = 1000

// ScanOptions tune Scan. The zero value scans with the real clock and the
// default retention.
type ScanOptions struct {
	// Now is the clock that decides which records are expired; time.Now
	// when nil.
	Now tokenledger.Clock
	// RetentionDays is R: records on days before today − R are expired.
	// tokenledger.DefaultRetentionDays when 0.
	RetentionDays int
	// BatchSize is the most events handed to fn at once; DefaultScanBatch
	// when 0.
	BatchSize int
}

// InvalidRecord is a record of the original format that was skipped
// because it breaks a rule.
type InvalidRecord struct {
	// Index is the record's position in the file's array, from 0.
	Index int
	// ID is the record's id, "" when it has none.
	ID string
	// Reason says which rule it breaks, in one phrase.
	Reason string
}

// ScanResult counts what Scan read. Records = Valid + Expired + Invalid +
// Duplicates.
type ScanResult struct {
	// Format is FormatTokenledger, FormatOriginal, or "" when there is
	// neither a file nor a journal at the path.
	Format string
	// Records counts the events (our format: the file's and the unfolded
	// journals') or array elements (original format) read.
	Records int
	// Valid counts the events handed to fn: valid, not expired, and the
	// first with their (day, id).
	Valid int
	// Expired counts records on days before today − R.
	Expired int
	// Invalid counts records of the original format that break a rule;
	// InvalidRecords says which and why. (In our own format an invalid
	// event is corruption, and Scan returns an error instead.)
	Invalid int
	// InvalidRecords lists the invalid records, for the log.
	InvalidRecords []InvalidRecord
	// Duplicates counts records whose (day, id) was read before; they
	// count once.
	Duplicates int
	// TornTail is the incomplete last line of the newest journal, left by
	// a crash mid-write (never acknowledged) — or, while a Store is
	// writing, a line not yet complete — or nil. Scan skips it.
	TornTail *TornTail
}

// Scan reads the usage file at path in either format (and, for ours, its
// unfolded journals) and calls fn with batches of valid, unexpired
// events, each (day, id) once, oldest file content first. It neither
// locks nor changes anything, so it may run while a Store has the file
// open, but it then sees the file as it was at some moment during the
// scan. A missing file (and no journal) gives an empty result and a nil
// error. A file or journal that cannot be read gives a *CorruptError (or
// ErrUnknownVersion) and the counts up to that point; fn's error stops
// the scan and is returned. Scan keeps the (day, id) pairs it has seen in
// memory, not the events.
func Scan(path string, o ScanOptions, fn func([]tokenledger.Event) error) (ScanResult, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	retention := o.RetentionDays
	if retention == 0 {
		retention = tokenledger.DefaultRetentionDays
	}
	if retention < 1 || retention > tokenledger.MaxRetentionDays {
		return ScanResult{}, fmt.Errorf("scan %s: retention must be 1 to %d days, not %d", path, tokenledger.MaxRetentionDays, retention)
	}
	batch := o.BatchSize
	if batch <= 0 {
		batch = DefaultScanBatch
	}
	seen := map[tokenledger.Date]map[string]struct{}{}
	var res ScanResult
	at := now()
	_, err := scanFiles(path, at, tokenledger.DateOf(at).AddDays(-retention), batch, &res, func(evs []tokenledger.Event) error {
		unique := make([]tokenledger.Event, 0, len(evs))
		for i := range evs {
			d := evs[i].Day()
			ids := seen[d]
			if ids == nil {
				ids = map[string]struct{}{}
				seen[d] = ids
			}
			if _, dup := ids[evs[i].ID]; dup {
				res.Duplicates++
				continue
			}
			ids[evs[i].ID] = struct{}{}
			unique = append(unique, evs[i])
		}
		res.Valid += len(unique)
		if len(unique) == 0 {
			return nil
		}
		return fn(unique)
	})
	return res, err
}

// scanned is what scanFiles learnt about the files, for Open.
type scanned struct {
	kind fileKind
	// snapSize is the usage file's size in bytes.
	snapSize int64
	// folded is the usage file's "foldedJournal".
	folded uint64
	// firstDay is the oldest day in our usage file, expired or not: it
	// tells whether a compaction has days to drop.
	firstDay tokenledger.Date
	// stale are journals already folded into the usage file.
	stale []journalFile
	// journals are the unfolded journals that were replayed, oldest first.
	journals []journalFile
	// lastValidEnd is where the valid part of the newest journal ends.
	lastValidEnd int64
	// unfoldedBytes is the size of the unfolded journals (valid part).
	unfoldedBytes int64
}

// scanFiles reads the usage file and its unfolded journals and calls emit
// with batches of valid, unexpired events (not deduplicated), counting
// Records, Expired, Invalid and TornTail in res. It changes nothing. A
// record of the original format is invalid where the API would refuse it
// at now: its timestamp more than MaxFutureSkew ahead, too.
//
// Journals are opened before the usage file, so that a compaction running
// meanwhile in another process cannot make a journal vanish between
// reading the file and reading the journal: an open journal stays
// readable, and one folded meanwhile is skipped by the file's
// "foldedJournal".
func scanFiles(path string, now time.Time, oldest tokenledger.Date, batchSize int, res *ScanResult, emit func([]tokenledger.Event) error) (scanned, error) {
	var sc scanned
	list, err := listJournals(path)
	if err != nil {
		return sc, err
	}
	type openJournal struct {
		journalFile
		f *os.File
	}
	var opened []openJournal
	defer func() {
		for _, j := range opened {
			j.f.Close()
		}
	}()
	for _, j := range list {
		f, err := os.Open(j.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // folded and removed since the listing
		}
		if err != nil {
			return sc, fmt.Errorf("open journal: %w", err)
		}
		opened = append(opened, openJournal{j, f})
	}

	var cps []checkpoint
	var snap *usageReader
	if isVersion2(path) {
		// The snapshot holds aggregates only: every event is in a journal.
		s2, err := readSnapshot2(path, oldest)
		if err != nil {
			return sc, err
		}
		var present []journalFile
		for _, j := range opened {
			present = append(present, j.journalFile)
		}
		if err := checkPresent(path, s2.Checkpoints, oldest, present); err != nil {
			return sc, err
		}
		for _, c := range s2.Checkpoints {
			// Open needs the indexes: Scan refuses what Open would.
			if c.LastDay < oldest {
				continue
			}
			if err := readIndex(indexName(path, c.To), oldest, func(tokenledger.Date, dayagg.IDs) {}); err != nil {
				return sc, err
			}
		}
		snap = &usageReader{path: path, kind: kindV2}
		sc.kind, sc.folded, cps = kindV2, s2.Covered, s2.Checkpoints
	} else if snap, err = openSnapshot(path); err != nil {
		return sc, err
	}
	defer snap.close()
	if sc.kind != kindV2 {
		sc.kind, sc.snapSize, sc.folded = snap.kind, snap.size, snap.folded
	}

	var buf []tokenledger.Event
	add := func(e *tokenledger.Event) error {
		res.Records++
		if e.Day() < oldest {
			res.Expired++
			return nil
		}
		buf = append(buf, *e)
		if len(buf) >= batchSize {
			err := emit(buf)
			buf = buf[:0]
			return err
		}
		return nil
	}
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := emit(buf)
		buf = buf[:0]
		return err
	}

	switch snap.kind {
	case kindOurs:
		err = snap.eachDay(func(d tokenledger.Date, evs []tokenledger.Event) error {
			if sc.firstDay == "" {
				sc.firstDay = d
			}
			for i := range evs {
				if err := add(&evs[i]); err != nil {
					return err
				}
			}
			return nil
		})
	case kindOriginal:
		latest := now.Add(tokenledger.MaxFutureSkew)
		err = snap.eachRecord(func(index int, e *tokenledger.Event, id, reason string) error {
			if reason == "" && e.Timestamp.After(latest) {
				reason = "timestamp must not be more than 5 minutes in the future"
			}
			if reason != "" {
				res.Records++
				res.Invalid++
				res.InvalidRecords = append(res.InvalidRecords, InvalidRecord{Index: index, ID: id, Reason: reason})
				return nil
			}
			return add(e)
		})
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return sc, err
	}

	var live []openJournal
	for _, j := range opened {
		// With no usage file nothing is folded: every journal is live
		// (journal 0 exists only as a migrated version 2 segment).
		if j.seq <= sc.folded && sc.kind != kindNone && !covers(cps, j.seq) {
			sc.stale = append(sc.stale, j.journalFile)
		} else {
			live = append(live, j)
		}
	}
	for i, j := range live {
		jr, err := readJournal(j.path, j.f, i == len(live)-1, func(evs []tokenledger.Event) error {
			for k := range evs {
				if err := add(&evs[k]); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return sc, err
		}
		sc.journals = append(sc.journals, j.journalFile)
		sc.unfoldedBytes += jr.validEnd
		sc.lastValidEnd = jr.validEnd
		if jr.torn != nil {
			res.TornTail = jr.torn
		}
	}
	if sc.kind == kindNone && len(sc.journals) > 0 {
		res.Format = FormatTokenledger
	} else {
		res.Format = sc.kind.String()
	}
	return sc, nil
}
