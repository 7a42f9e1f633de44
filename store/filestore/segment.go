package filestore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// lineWriter writes events as journal lines of at most maxLineEvents
// events, buffered.
type lineWriter struct {
	bw            *bufio.Writer
	payload, line []byte
	bytes         int64
}

func newLineWriter(w io.Writer) *lineWriter {
	return &lineWriter{bw: bufio.NewWriterSize(w, 1<<20)}
}

// write writes evs as one or more lines.
func (w *lineWriter) write(evs []tokenledger.Event) error {
	for start := 0; start < len(evs); start += maxLineEvents {
		w.payload = appendBatch(w.payload[:0], evs[start:min(start+maxLineEvents, len(evs))])
		var err error
		if w.line, err = journal.AppendRecord(w.line[:0], w.payload); err != nil {
			return err
		}
		if _, err := w.bw.Write(w.line); err != nil {
			return err
		}
		w.bytes += int64(len(w.line))
	}
	return nil
}

func (w *lineWriter) flush() error { return w.bw.Flush() }

// WriteFile2 writes a new store in version 3 at path: the days that days
// yields as one journal segment, its id index, their day files and the
// manifest, exactly as a checkpoint writes them. It is for tools that
// need a large store quickly, such as the benchmarks; days must yield
// ascending dates, each with its events on that date and distinct ids
// (nothing here checks them). Neither path nor its first journal may
// exist. Memory holds the packed ids, not the events.
func WriteFile2(path string, now time.Time, days iter.Seq2[tokenledger.Date, []tokenledger.Event]) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write token usage file %s: it exists already or cannot be checked (%v)", path, err)
	}
	seg := journalName(path, 1)
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write token usage file: %w", err)
	}
	defer f.Close()
	w := newLineWriter(f)
	ids := map[tokenledger.Date]dayagg.IDs{}
	var states []dayagg.State
	for date, evs := range days {
		if len(evs) == 0 {
			continue
		}
		if err := w.write(evs); err != nil {
			return fmt.Errorf("write token usage file: %w", err)
		}
		one := dayagg.New()
		for i := range evs {
			one.Apply(&evs[i])
		}
		states = append(states, one.Export()...)
		ids[date] = one.Seal()[date]
	}
	if err := w.flush(); err == nil {
		err = f.Sync()
	} else {
		return fmt.Errorf("write token usage file: %w", err)
	}
	last, err := writeIndex(indexName(path, 1), ids)
	if err != nil {
		return err
	}
	files := make(map[tokenledger.Date]dayFile, len(states))
	for _, st := range states {
		size, err := writeDayFile(path, st, 1)
		if err != nil {
			return err
		}
		files[st.Day.Date] = dayFile{gen: 1, size: size}
	}
	h := header2{UpdatedAt: now.UTC(), RetentionDays: tokenledger.DefaultRetentionDays, Covered: 1, Checkpoints: []checkpoint{{From: 1, To: 1, LastDay: last}}, Generation: 1}
	_, err = writeSnapshot2(path, h, dayRefs(files), nil)
	return err
}
