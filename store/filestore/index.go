package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/internal/dayagg"
	"github.com/tokenledger/tokenledger/store/internal/journal"
)

// An id index ("<file>.index-<to>") holds the ids of the events of one
// checkpoint's journals, day by day, so that a start reads them packed
// instead of parsing every event. Layout: the magic line, then one record
// per day in ascending date order, then an end record:
//
//	"tokenledger-index 1\n"
//	<uint32 LE payload length> <uint32 LE CRC-32C of payload> <payload>
//
// A day's payload is its date (10 bytes) and dayagg.IDs' encoding; the end
// record's payload is "end" and the uvarint count of day records.

const indexMagic = "tokenledger-index 1\n"

var indexCRC = crc32.MakeTable(crc32.Castagnoli)

// maxIndexRecord bounds one record, against a length that is damage.
const maxIndexRecord = 1 << 30

// writeIndex writes the index of ids durably at name (temp file, fsync,
// rename, fsync of the directory) and returns the newest day it holds.
func writeIndex(name string, ids map[tokenledger.Date]dayagg.IDs) (tokenledger.Date, error) {
	days := make([]tokenledger.Date, 0, len(ids))
	for d := range ids {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	tmp, err := journal.CreateAtomic(name, filepath.Base(name)+".tmp-*", 0o644)
	if err != nil {
		return "", fmt.Errorf("write id index: %w", err)
	}
	defer tmp.Discard()
	bw := bufio.NewWriterSize(tmp.File(), 1<<20)
	var buf []byte
	put := func(payload []byte) error {
		var h [8]byte
		binary.LittleEndian.PutUint32(h[:4], uint32(len(payload)))
		binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(payload, indexCRC))
		if _, err := bw.Write(h[:]); err != nil {
			return err
		}
		_, err := bw.Write(payload)
		return err
	}
	_, err = bw.WriteString(indexMagic)
	for i := 0; err == nil && i < len(days); i++ {
		p := ids[days[i]]
		buf = p.Append(append(buf[:0], days[i]...))
		err = put(buf)
	}
	if err == nil {
		err = put(binary.AppendUvarint([]byte("end"), uint64(len(days))))
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Commit()
	}
	if err != nil {
		return "", fmt.Errorf("write id index %s: %w", name, err)
	}
	if len(days) == 0 {
		return "", nil
	}
	return days[len(days)-1], nil
}

// readIndex reads the index at name and calls fn with each day's ids from
// oldest on (older days are skipped unread). Damage is a *CorruptError
// naming the file and the offset of the bad record.
func readIndex(name string, oldest tokenledger.Date, fn func(tokenledger.Date, dayagg.IDs)) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return corruptAt(name, 0, "the id index is missing")
	}
	if err != nil {
		return fmt.Errorf("open id index: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(indexMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != indexMagic {
		return &CorruptError{Path: name, Offset: 0, Line: 1, Reason: "the file does not start as an id index"}
	}
	off := int64(len(indexMagic))
	var prev tokenledger.Date
	var buf []byte
	for n := 0; ; n++ {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return &CorruptError{Path: name, Offset: off, Reason: "the id index ends before its end record (it was cut short)"}
		}
		l := binary.LittleEndian.Uint32(h[:4])
		if l > maxIndexRecord || l < 4 {
			return &CorruptError{Path: name, Offset: off, Reason: fmt.Sprintf("a record length of %d bytes is out of bounds", l)}
		}
		if cap(buf) < int(l) {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(br, buf); err != nil {
			return &CorruptError{Path: name, Offset: off, Reason: "the id index ends inside a record (it was cut short)"}
		}
		if crc32.Checksum(buf, indexCRC) != binary.LittleEndian.Uint32(h[4:]) {
			return &CorruptError{Path: name, Offset: off, Reason: "checksum mismatch"}
		}
		if string(buf[:3]) == "end" {
			if c, k := binary.Uvarint(buf[3:]); k <= 0 || c != uint64(n) {
				return &CorruptError{Path: name, Offset: off, Reason: "the end record's day count does not match"}
			}
			return nil
		}
		date := tokenledger.Date(buf[:min(10, len(buf))])
		if _, err := tokenledger.ParseDate(string(date)); err != nil || len(buf) < 10 || date <= prev {
			return &CorruptError{Path: name, Offset: off, Reason: fmt.Sprintf("day %q is not a date after the one before it", date)}
		}
		prev = date
		if date >= oldest {
			ids, used, err := dayagg.DecodeIDs(buf[10:])
			if err == nil && used != len(buf)-10 {
				err = errors.New("bytes follow the id list")
			}
			if err != nil {
				return &CorruptError{Path: name, Offset: off, Reason: fmt.Sprintf("day %s: %v", date, err)}
			}
			fn(date, ids)
		}
		off += 8 + int64(l)
	}
}
