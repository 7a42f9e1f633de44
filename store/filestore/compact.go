package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// foldParams is what a fold needs; it holds no reference to the Store, so
// a fold can run in the background while writers go on.
type foldParams struct {
	path, base   string
	kind         fileKind
	folded, upTo uint64
	now          time.Time
	oldest       tokenledger.Date
	retention    int
	chunkEvents  int
}

// foldResult describes the file a fold (or Reset) wrote.
type foldResult struct {
	size   int64
	oldest tokenledger.Date // the first day written, "" when none
	days   int
	events int
	// backup is where the original-format file was kept, "" when the file
	// was already ours.
	backup string
}

// foldJournals writes a new usage file holding the current file's events plus
// those of the journals numbered folded+1 … upTo, without the days before
// p.oldest, and installs it atomically: temp file, fsync, rename, fsync of
// the directory. A file in the original format is first kept as a backup.
//
// Our file is read as a stream, one day at a time (its days are in date
// order). The journals (and an original-format file, whose records are in
// no particular order) are read once to count their events per day, then
// again once per chunk of consecutive days holding at most p.chunkEvents
// events, so memory stays bounded by one chunk plus one day of the file.
// Within a day the file's events come first, then the journals' in the
// order they were written; an id seen before on that day is dropped.
func foldJournals(ctx context.Context, p foldParams) (foldResult, error) {
	all, err := listJournals(p.path)
	if err != nil {
		return foldResult{}, err
	}
	var journals []journalFile
	for _, j := range all {
		if j.seq > p.folded && j.seq <= p.upTo {
			journals = append(journals, j)
		}
	}

	// eachUnsorted calls fn with every unexpired event of the sources
	// that are not in date order.
	eachUnsorted := func(fn func(e *tokenledger.Event) error) error {
		n := 0
		keep := func(e *tokenledger.Event) error {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if e.Day() < p.oldest {
				return nil
			}
			return fn(e)
		}
		if p.kind == kindOriginal {
			snap, err := openSnapshot(p.path)
			if err != nil {
				return err
			}
			if snap.kind != kindOriginal {
				snap.close()
				return fmt.Errorf("token usage file %s changed while it was being compacted", p.path)
			}
			err = snap.eachRecord(func(_ int, e *tokenledger.Event, _, reason string) error {
				if reason != "" {
					return nil // logged when the file was loaded
				}
				return keep(e)
			})
			snap.close()
			if err != nil {
				return err
			}
		}
		for _, j := range journals {
			f, err := os.Open(j.path)
			if err != nil {
				return fmt.Errorf("open journal: %w", err)
			}
			_, err = readJournal(j.path, f, false, func(evs []tokenledger.Event) error {
				for i := range evs {
					if err := keep(&evs[i]); err != nil {
						return err
					}
				}
				return nil
			})
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}

	// Pass 1: how many events each day has in the unsorted sources. While
	// they fit in one chunk they are kept, so that the usual small journal
	// is read only once.
	budget := max(p.chunkEvents, 1)
	counts := map[tokenledger.Date]int{}
	pre, preTotal := map[tokenledger.Date][]tokenledger.Event{}, 0
	if err := eachUnsorted(func(e *tokenledger.Event) error {
		d := e.Day()
		counts[d]++
		if pre != nil {
			if preTotal++; preTotal > budget {
				pre = nil
			} else {
				pre[d] = append(pre[d], *e)
			}
		}
		return nil
	}); err != nil {
		return foldResult{}, err
	}
	days := make([]tokenledger.Date, 0, len(counts))
	for d := range counts {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	type chunk struct{ from, to tokenledger.Date }
	var chunks []chunk
	for i, n := 0, 0; i < len(days); i++ {
		if len(chunks) == 0 || n+counts[days[i]] > budget {
			chunks = append(chunks, chunk{days[i], days[i]})
			n = 0
		}
		chunks[len(chunks)-1].to = days[i]
		n += counts[days[i]]
	}

	ci, loaded := 0, -1
	var held map[tokenledger.Date][]tokenledger.Event
	if pre != nil && len(chunks) > 0 {
		chunks = []chunk{{days[0], days[len(days)-1]}}
		held, loaded = pre, 0
	}
	unsortedOn := func(d tokenledger.Date) ([]tokenledger.Event, error) {
		for ci < len(chunks) && chunks[ci].to < d {
			ci++
		}
		if ci == len(chunks) || chunks[ci].from > d {
			return nil, nil
		}
		if loaded != ci {
			c := chunks[ci]
			held = map[tokenledger.Date][]tokenledger.Event{}
			err := eachUnsorted(func(e *tokenledger.Event) error {
				if d := e.Day(); d >= c.from && d <= c.to {
					held[d] = append(held[d], *e)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			loaded = ci
		}
		evs := held[d]
		delete(held, d)
		return evs, nil
	}

	return writeSnapshot(ctx, p, func(w *snapWriter) (tokenledger.Date, error) {
		var first tokenledger.Date
		pi := 0
		emit := func(d tokenledger.Date, evs []tokenledger.Event) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			more, err := unsortedOn(d)
			if err != nil {
				return err
			}
			evs = append(evs, more...)
			ids := make(map[string]struct{}, len(evs))
			out := evs[:0]
			for i := range evs {
				if _, dup := ids[evs[i].ID]; dup {
					continue
				}
				ids[evs[i].ID] = struct{}{}
				out = append(out, evs[i])
			}
			if len(out) == 0 {
				return nil
			}
			if first == "" {
				first = d
			}
			return w.day(d, out)
		}
		if p.kind == kindOurs {
			snap, err := openSnapshot(p.path)
			if err != nil {
				return "", err
			}
			defer snap.close()
			if snap.kind != kindOurs || snap.folded != p.folded {
				return "", fmt.Errorf("token usage file %s changed while it was being compacted", p.path)
			}
			err = snap.eachDay(func(d tokenledger.Date, evs []tokenledger.Event) error {
				if d < p.oldest {
					return nil
				}
				for ; pi < len(days) && days[pi] < d; pi++ {
					if err := emit(days[pi], nil); err != nil {
						return err
					}
				}
				if pi < len(days) && days[pi] == d {
					pi++
				}
				return emit(d, evs)
			})
			if err != nil {
				return "", err
			}
		}
		for ; pi < len(days); pi++ {
			if err := emit(days[pi], nil); err != nil {
				return "", err
			}
		}
		return first, nil
	})
}

// createSnapshot creates the temp file of a new usage file; a test makes
// it fail, as a full disk does, to see what a failed compaction leaves.
var createSnapshot = journal.CreateAtomic

// writeSnapshot writes a new usage file with body between the header and
// the end, then installs it: temp file "<file>.tmp-*", fsync, (backup of
// an original-format file), rename over the file, fsync of the directory.
// body returns the first day it wrote. ctx is checked before the rename;
// after it the new file is in place.
func writeSnapshot(ctx context.Context, p foldParams, body func(w *snapWriter) (tokenledger.Date, error)) (foldResult, error) {
	// Keep the file's permissions.
	mode := os.FileMode(0o644)
	if st, err := os.Stat(p.path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := createSnapshot(p.path, p.base+".tmp-*", mode)
	if err != nil {
		return foldResult{}, fmt.Errorf("write token usage file: %w", err)
	}
	defer tmp.Discard()
	tmpName := tmp.File().Name()
	bw := bufio.NewWriterSize(tmp.File(), 1<<20)
	w := &snapWriter{w: bw}
	var out foldResult
	err = w.begin(p.now, p.retention, p.upTo)
	if err == nil {
		out.oldest, err = body(w)
	}
	if err == nil {
		err = w.end()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		out.size, err = tmp.File().Seek(0, io.SeekCurrent)
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return foldResult{}, fmt.Errorf("write token usage file %s: %w", tmpName, err)
	}
	if err := ctx.Err(); err != nil {
		return foldResult{}, err
	}
	if p.kind == kindOriginal {
		if out.backup, err = keepOriginal(p.path); err != nil {
			return foldResult{}, err
		}
	}
	if err := tmp.Commit(); err != nil {
		return foldResult{}, fmt.Errorf("install token usage file: %w", err)
	}
	out.days, out.events = w.days, w.events
	return out, nil
}

// WriteFile writes a new usage file at path holding the days that days
// yields, exactly as a compaction writes one (with now as its updatedAt),
// and installs it atomically. It is for tools that need a large store
// quickly, such as the benchmarks; the file store then opens it like any
// other. days must yield ascending dates, each with its events on that
// date and distinct ids; nothing here checks the events (Open does, when
// it reads the file), and days with no events are left out. path must
// not exist.
func WriteFile(path string, now time.Time, days iter.Seq2[tokenledger.Date, []tokenledger.Event]) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			return fmt.Errorf("write token usage file %s: it exists already", path)
		}
		return fmt.Errorf("write token usage file: %w", err)
	}
	p := foldParams{path: path, base: filepath.Base(path), kind: kindNone, now: now, retention: tokenledger.DefaultRetentionDays}
	_, err := writeSnapshot(context.Background(), p, func(w *snapWriter) (tokenledger.Date, error) {
		var first tokenledger.Date
		for date, evs := range days {
			if len(evs) == 0 {
				continue
			}
			if first == "" {
				first = date
			}
			if err := w.day(date, evs); err != nil {
				return "", err
			}
		}
		return first, nil
	})
	return err
}

// stamp returns the current UTC time for backup names, e.g.
// "20261127T120000Z".
func stamp() string { return time.Now().UTC().Format("20060102T150405Z") }

// keepOriginal keeps the original-format file at path, byte for byte, as
// "<path>.original-<UTC stamp>.json" (with "-2", "-3"… added when that
// name is taken): a hard link where the file system allows it, otherwise
// a durable copy. It returns the backup's path.
func keepOriginal(path string) (string, error) {
	st := stamp()
	for i := 1; i <= 100; i++ {
		name := path + ".original-" + st + ".json"
		if i > 1 {
			name = fmt.Sprintf("%s.original-%s-%d.json", path, st, i)
		}
		err := os.Link(path, name)
		switch {
		case errors.Is(err, fs.ErrExist):
			continue
		case err == nil:
			err = journal.SyncDir(name)
		default:
			if _, serr := os.Lstat(name); serr == nil {
				continue
			}
			err = copyDurably(path, name)
		}
		if err != nil {
			return "", fmt.Errorf("keep the original token usage file as %s: %w", name, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("keep the original token usage file: too many backups named %s.original-%s*.json", path, st)
}

// copyDurably copies src to dst (which must not exist) through a temp file
// named like a compaction's, which Open removes if a crash leaves it.
func copyDurably(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := journal.CreateAtomic(dst, filepath.Base(src)+".tmp-*", 0o600)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	if _, err := io.Copy(tmp.File(), in); err != nil {
		return err
	}
	return tmp.Commit()
}
