package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/filestore"
	"github.com/tokenledger/tokenledger/store/redis"
)

// The stored data: event k (from 0) is on day k/20,000 before today, for
// model (k/1,000) mod 20 and user k mod 1,000; so 1,820,000 events are
// 91 days × 20 models × 1,000 users, one event each.
const (
	seedModels = 20
	seedUsers  = 1000
	seedDays   = 91
	fullSeed   = seedDays * seedModels * seedUsers
)

var quiet = slog.New(slog.DiscardHandler)

// layout spreads events over days, models and users: event k is on day
// (k/(models×users)) mod days before today, for model (k/users) mod
// models and user k mod users.
type layout struct{ models, users, days int }

// seedLayout is the layout of every stored-data measurement.
var seedLayout = layout{seedModels, seedUsers, seedDays}

// block is how many consecutive events share a day.
func (l layout) block() int { return l.models * l.users }

// event returns event k.
func (l layout) event(k int, now time.Time) tokenledger.Event {
	d := (k / l.block()) % l.days
	ts := tokenledger.DateOf(now).AddDays(-d).Time().Add(12 * time.Hour)
	if d == 0 {
		ts = now.Add(-time.Minute)
	}
	return tokenledger.Event{
		ID: "seed-" + strconv.Itoa(k), Timestamp: ts,
		Model: fmt.Sprintf("model-%02d", (k/l.users)%l.models), UserID: "user-" + strconv.Itoa(k%l.users),
		SessionID:    "session-" + strconv.Itoa(k%5000),
		PromptTokens: int64(100 + k%900), CompletionTokens: int64(k % 300), TotalTokens: int64(100 + k%900 + k%300),
		Cost: tokenledger.Nanos(1000 + k%5000),
	}
}

// seedEvent returns event k of seedLayout.
func seedEvent(k int, now time.Time) tokenledger.Event { return seedLayout.event(k, now) }

// seed adds events [from, to) to st in batches of 5,000 from 4 goroutines.
func seed(st tokenledger.Store, from, to int, now time.Time) {
	type span struct{ a, b int }
	work := make(chan span)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]tokenledger.Event, 0, 5000)
			for s := range work {
				batch = batch[:0]
				for k := s.a; k < s.b; k++ {
					batch = append(batch, seedEvent(k, now))
				}
				// Seeded events go straight to the store, checked as stored
				// events are: the benchmark builds history, not requests.
				b, err := tokenledger.StoredBatch(batch)
				if err == nil {
					_, err = st.Add(context.Background(), b)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for a := from; a < to; {
		b := min(to, (a/5000+1)*5000) // batches never cross a day
		work <- span{a, b}
		a = b
	}
	close(work)
	wg.Wait()
	must(firstErr)
}

// addClaims writes the claims of events [from, to) straight into Redis —
// HSET <prefix>:{day}:ids:<bucket> <id> 1 and its EXPIREAT, what the script
// stores per event besides the day's aggregates (docs/redis.md "Claims") —
// pipelined over one connection. It stands in for logging millions of
// events through the script, which the 10-minute budget
// cannot afford; the keyspace it leaves is the same size.
func addClaims(addr string, from, to int, now time.Time) {
	keys, err := redis.NewKeys("tokenledger")
	must(err)
	c, err := net.Dial("tcp", addr)
	must(err)
	defer c.Close()
	done := make(chan error, 1)
	go func() { // read and count the replies
		r := bufio.NewReaderSize(c, 1<<16)
		for n := 2 * from; n < 2*to; n++ { // HSET and EXPIREAT per event
			line, err := r.ReadSlice('\n')
			if err != nil {
				done <- err
				return
			}
			if len(line) == 0 || line[0] != ':' {
				done <- fmt.Errorf("HSET or EXPIREAT answered %q", line)
				return
			}
		}
		done <- nil
	}()
	w := bufio.NewWriterSize(c, 1<<20)
	exp := map[int]string{}
	var buf []byte
	for k := from; k < to; k++ {
		d := k % seedDays
		day := tokenledger.DateOf(now).AddDays(-d)
		e, ok := exp[d]
		if !ok {
			e = strconv.FormatInt(day.Time().AddDate(0, 0, tokenledger.DefaultRetentionDays+1).Unix(), 10)
			exp[d] = e
		}
		_, bucket, field := keys.Claim(day, "claim-"+strconv.Itoa(k))
		buf = appendCmd(buf[:0], "HSET", bucket, field, "1")
		buf = appendCmd(buf, "EXPIREAT", bucket, e)
		_, _ = w.Write(buf)
	}
	must(w.Flush())
	must(<-done)
}

// appendCmd appends args as a RESP array of bulk strings.
func appendCmd(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

// writeUsageFile writes events [0, n) of l straight into a new usage file
// at path with filestore.WriteFile, as a compaction would leave them. It
// stands in for logging ten million events through the store, which the
// 10-minute budget cannot afford; `serve` then reads the file like any
// other.
func writeUsageFile(path string, l layout, n int, now time.Time) error {
	return filestore.WriteFile2(path, now, func(yield func(tokenledger.Date, []tokenledger.Event) bool) {
		for d := l.days - 1; d >= 0; d-- { // oldest first
			if !yield(tokenledger.DateOf(now).AddDays(-d), l.dayEvents(d, n, now)) {
				return
			}
		}
	})
}

// dayEvents returns the events among [0, n) that are d days before today:
// the block of events on day d in each pass over the days.
func (l layout) dayEvents(d, n int, now time.Time) []tokenledger.Event {
	var evs []tokenledger.Event
	for base := d * l.block(); base < n; base += l.days * l.block() {
		for k := base; k < min(base+l.block(), n); k++ {
			evs = append(evs, l.event(k, now))
		}
	}
	return evs
}
