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
	"github.com/tokenledger/tokenledger/internal/redismodel"
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

// seedEvent returns event k.
func seedEvent(k int, now time.Time) tokenledger.Event {
	d := (k / (seedModels * seedUsers)) % seedDays
	ts := tokenledger.DateOf(now).AddDays(-d).Time().Add(12 * time.Hour)
	if d == 0 {
		ts = now.Add(-time.Minute)
	}
	return tokenledger.Event{
		ID: "seed-" + strconv.Itoa(k), Timestamp: ts,
		Model: fmt.Sprintf("model-%02d", (k/seedUsers)%seedModels), UserID: "user-" + strconv.Itoa(k%seedUsers),
		SessionID:    "session-" + strconv.Itoa(k%5000),
		PromptTokens: int64(100 + k%900), CompletionTokens: int64(k % 300), TotalTokens: int64(100 + k%900 + k%300),
		Cost: tokenledger.Nanos(1000 + k%5000),
	}
}

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
				if _, err := st.Add(context.Background(), batch); err != nil {
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

// addClaims writes the claim keys of events [from, to) straight into
// Redis — SET <prefix>:{day}:id:<id> 1 EXAT <expiry>, what the script
// stores per event besides the day's aggregates — pipelined over one
// connection. It stands in for logging millions of events through the
// script (about 25 µs of Redis CPU each), which the 10-minute budget
// cannot afford; the keyspace it leaves is the same size.
func addClaims(addr string, from, to int, now time.Time) {
	keys, err := redismodel.NewKeys("tokenledger")
	must(err)
	c, err := net.Dial("tcp", addr)
	must(err)
	defer c.Close()
	done := make(chan error, 1)
	go func() { // read and count the replies
		r := bufio.NewReaderSize(c, 1<<16)
		for n := from; n < to; n++ {
			line, err := r.ReadSlice('\n')
			if err != nil {
				done <- err
				return
			}
			if len(line) == 0 || line[0] != '+' {
				done <- fmt.Errorf("SET answered %q", line)
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
		buf = appendCmd(buf[:0], "SET", keys.ID(day, "claim-"+strconv.Itoa(k)), "1", "EXAT", e)
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
