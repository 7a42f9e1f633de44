package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// fixtureDir holds the original service's file and what tokenledger must
// report after reading it (a copy of ../shared/testdata/original-format).
var fixtureDir = filepath.Join("..", "..", "..", "testdata", "original-format")

// shiftedFixture is the fixture moved to the real clock.
type shiftedFixture struct {
	file []byte // token_usage.json with every timestamp and date shifted
	// days are the days the database must hold, shifted, by date.
	days map[tokenledger.Date]tokenledger.Day
	// stats is what action=stats must answer.
	stats tokenledger.Stats
	// records and migrated: what the file holds and what must be imported.
	records, migrated int
	today             tokenledger.Date
}

// loadShiftedFixture reads the fixture and shifts it by a whole number of
// days so that its "now" (2026-11-27T12:00:00Z) falls on today, keeping
// every record's time of day; back moves it that many days further into
// the past.
//
// The tests run on the real clock, and the fixture's newest records are
// from 08:26:46 on its last day. Before that time of day (UTC) they would
// lie in the future today, so then the shift is one day less: the
// fixture's last day becomes yesterday, its first retained day falls out
// of the 90-day window, and the expectations drop that day (its records
// count as expired instead). Either way the expectations are derived from
// expected.json's own days; when no day is dropped they are checked to be
// expected.json's stats and counts exactly.
func loadShiftedFixture(t testing.TB, back int) shiftedFixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir, "token_usage.json"))
	if err != nil {
		t.Fatalf("the shared fixture: %v", err)
	}
	var exp struct {
		Now           time.Time                            `json:"now"`
		RetentionDays int                                  `json:"retentionDays"`
		Records       int                                  `json:"records"`
		Migrated      int                                  `json:"migrated"`
		Stats         tokenledger.Stats                    `json:"stats"`
		Days          map[tokenledger.Date]tokenledger.Day `json:"days"`
	}
	b, err := os.ReadFile(filepath.Join(fixtureDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	var records []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &records); err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	for _, r := range records {
		var ts time.Time
		if err := json.Unmarshal(r["timestamp"], &ts); err != nil {
			t.Fatalf("fixture record %s: %v", r["id"], err)
		}
		if ts.After(newest) {
			newest = ts
		}
	}

	now := time.Now().UTC()
	today := tokenledger.DateOf(now)
	shift := int(today.Time().Sub(tokenledger.DateOf(exp.Now).Time()) / (24 * time.Hour))
	if newest.AddDate(0, 0, shift).After(now) {
		shift--
	}
	shift -= back

	for _, r := range records {
		var ts time.Time
		var date tokenledger.Date
		if err := json.Unmarshal(r["timestamp"], &ts); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r["date"], &date); err != nil {
			t.Fatal(err)
		}
		r["timestamp"], _ = json.Marshal(ts.AddDate(0, 0, shift).UTC().Format("2006-01-02T15:04:05.000Z"))
		r["date"], _ = json.Marshal(date.AddDays(shift))
	}
	f := shiftedFixture{records: exp.Records, today: today, days: map[tokenledger.Date]tokenledger.Day{}}
	if f.file, err = json.MarshalIndent(records, "", "  "); err != nil {
		t.Fatal(err)
	}
	oldest := today.AddDays(-exp.RetentionDays)
	dropped := 0
	for date, d := range exp.Days {
		d.Date = date.AddDays(shift)
		if d.Date < oldest {
			dropped++
			continue
		}
		f.days[d.Date] = d
		f.migrated += int(d.RequestCount)
	}
	t.Logf("the fixture is shifted by %d days (now %s; its newest record becomes %s); %d of its days fall out of the window",
		shift, now.Format(time.RFC3339), newest.AddDate(0, 0, shift).Format(time.RFC3339), dropped)
	f.stats = tokenledger.ComputeStats(daysOf(f.days))
	if dropped == 0 {
		// Nothing fell out of the window: the numbers are expected.json's own.
		want := exp.Stats
		d := tokenledger.Date(*want.MostActiveDate).AddDays(shift)
		want.MostActiveDate = &d
		if got := f.stats; got.TotalTokensAllTime != want.TotalTokensAllTime || got.TotalRequests != want.TotalRequests ||
			got.AvgTokensPerRequest != want.AvgTokensPerRequest || got.DaysTracked != want.DaysTracked ||
			*got.MostActiveDate != *want.MostActiveDate || f.migrated != exp.Migrated {
			t.Fatalf("expected.json's days do not add up to its stats: %+v vs %+v", got, want)
		}
	}
	return f
}

func daysOf(m map[tokenledger.Date]tokenledger.Day) []tokenledger.Day {
	out := make([]tokenledger.Day, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	return out
}

// check compares what url reports over the whole window with the fixture:
// every day (totals, per-model totals, unique counts) and the stats.
func (f shiftedFixture) check(t testing.TB, s snapshot) {
	t.Helper()
	if len(s.All.History) != 91 {
		t.Fatalf("history has %d days, want 91", len(s.All.History))
	}
	bad := 0
	for _, got := range s.All.History {
		want, ok := f.days[got.Date]
		if !ok {
			want = tokenledger.EmptyDay(got.Date)
		}
		if !sameDay(got, want) {
			if bad++; bad <= 5 {
				t.Errorf("day %s:\n   got %s\n  want %s", got.Date, dayString(got), dayString(want))
			}
		}
	}
	got, want := s.All.Stats, f.stats
	if got.TotalTokensAllTime != want.TotalTokensAllTime || got.TotalRequests != want.TotalRequests ||
		got.AvgTokensPerRequest != want.AvgTokensPerRequest || got.DaysTracked != want.DaysTracked ||
		fmt.Sprint(deref(got.MostActiveDate)) != fmt.Sprint(deref(want.MostActiveDate)) {
		t.Errorf("stats:\n   got %+v\n  want %+v", got, want)
	}
	if bad > 5 {
		t.Errorf("… %d days differ in all", bad)
	}
}

// TestConcurrentMigration starts four serve processes at the same moment
// on one empty Redis, each with its own copy of the original service's
// file (shifted to today). Together they import it exactly once: the
// database ends with expected.json's numbers, each /api/test shows its
// share, and the files are renamed to .migrated, so a fifth start changes
// nothing.
func TestConcurrentMigration(t *testing.T) {
	srv := redistest.Server(t)
	f := loadShiftedFixture(t, 0)
	const instances = 4

	// "At the same moment", and importing side by side: Redis holds every
	// write (CLIENT PAUSE WRITE) while the four start; reads and loading
	// the script go on, so each one gets as far as its first batch of
	// records and waits there. Once all four wait, Redis lets them go.
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	ctx := context.Background()
	if err := rc.Do(ctx, "CLIENT", "PAUSE", "30000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	var servers []*server
	var files []string
	for i := range instances {
		env := redisEnv(srv, "migration", t.TempDir())
		env["TOKENLEDGER_DB_TIMEOUT"] = "30s" // wait out the pause
		if err := os.WriteFile(env["TOKENLEDGER_FILE"], f.file, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, env["TOKENLEDGER_FILE"])
		servers = append(servers, spawnServe(t, fmt.Sprintf("tokenledger-%d", i), env))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := rc.Info(ctx, "clients").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, fmt.Sprintf("blocked_clients:%d\r", instances)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every instance reached its first write within 20s:\n%s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rc.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		s.ready(t) // serve migrates before it listens
	}

	total, shares := 0, []int{}
	for i, s := range servers {
		status, r := apiTest(t, s.url)
		m := r.Migration
		if status != 200 || !m.Ran || m.File != files[i] || m.Error != "" ||
			m.Migrated+m.AlreadyInDatabase != f.migrated || m.Skipped != f.records-f.migrated {
			t.Errorf("%s: /api/test %d, migration %+v; want ran, file %s, migrated + alreadyInDatabase = %d, skipped %d",
				s.name, status, m, files[i], f.migrated, f.records-f.migrated)
		}
		total += m.Migrated
		shares = append(shares, m.Migrated)
		if line := fmt.Sprintf("📊 Migrated %d records from file to database", m.Migrated); !strings.Contains(s.log(), line) {
			t.Errorf("%s did not log %q", s.name, line)
		}
		if _, err := os.Stat(files[i]); !os.IsNotExist(err) {
			t.Errorf("%s: the migrated file is still there (%v)", s.name, err)
		}
		if b, err := os.ReadFile(files[i] + ".migrated"); err != nil || !bytes.Equal(b, f.file) {
			t.Errorf("%s: %s.migrated is not the file as it was (%v)", s.name, files[i], err)
		}
	}
	t.Logf("the instances imported %v records (%d in all)", shares, total)
	if total != f.migrated {
		t.Errorf("the instances imported %d records between them, want %d: each exactly once", total, f.migrated)
	}

	before := read(t, servers[0].url, 91)
	f.check(t, before)
	for _, s := range servers[1:] {
		if got := read(t, s.url, 91); got.Raw != before.Raw {
			t.Errorf("%s answers differently from %s", s.name, servers[0].name)
		}
	}

	// A fifth start, on the first instance's file and spool, finds nothing
	// to import and changes nothing.
	for _, s := range servers {
		s.stop(t)
	}
	fifth := startServe(t, "tokenledger-5", servers[0].env)
	if _, r := apiTest(t, fifth.url); r.Migration.Ran || r.Migration.Migrated != 0 {
		t.Errorf("the fifth start migrated again: %+v", r.Migration)
	}
	if got := read(t, fifth.url, 91); got.Raw != before.Raw {
		t.Errorf("the fifth start changed the data")
	}
	if tokenledger.DateOf(time.Now()) != f.today {
		t.Skip("the test crossed UTC midnight, which moved the retention window under it; run it again")
	}
}

// TestMigrationMarker: where the migrated file cannot be renamed, the
// migration leaves a marker in the database instead, and the next start
// does not read the file again.
//
// A read-only directory would stop the rename for an ordinary user but
// not for root (CI runs as root), so the test makes the rename fail in a
// way that holds for root too: every name the migration may rename the
// file to ("<file>.migrated", "<file>.migrated.2", …) is already taken,
// and a taken name is never replaced.
func TestMigrationMarker(t *testing.T) {
	srv := redistest.Server(t)
	// One day further back than TestConcurrentMigration, so that between
	// them both ways of shifting the fixture (see loadShiftedFixture) run
	// whatever the time of day.
	f := loadShiftedFixture(t, 1)
	env := redisEnv(srv, "marker", t.TempDir())
	file := env["TOKENLEDGER_FILE"]
	if err := os.WriteFile(file, f.file, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= migrate.MigratedNames; i++ {
		name := file + migrate.MigratedSuffix
		if i > 1 {
			name += "." + strconv.Itoa(i)
		}
		if err := os.MkdirAll(filepath.Join(name, "in-the-way"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	s := startServe(t, "tokenledger", env)
	if _, r := apiTest(t, s.url); !r.Migration.Ran || r.Migration.Migrated != f.migrated || r.Migration.Error != "" {
		t.Errorf("first start: migration %+v, want %d records migrated", r.Migration, f.migrated)
	}
	if !strings.Contains(s.log(), "left a marker in the database") {
		t.Errorf("the log does not say a marker was left")
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the file that could not be renamed is gone: %v", err)
	}
	before := read(t, s.url, 91)
	f.check(t, before)
	s.stop(t)

	// The file is still there; the marker keeps it from being read again.
	s2 := startServe(t, "tokenledger (restarted)", env)
	if _, r := apiTest(t, s2.url); r.Migration.Ran || r.Migration.Migrated != 0 || r.Migration.Error != "" ||
		!r.Migration.AlreadyMigrated || r.Migration.File != file {
		t.Errorf("restart: migration %+v, want not run, and %s shown as already migrated", r.Migration, file)
	}
	if strings.Contains(s2.log(), "📊 Migrated") {
		t.Errorf("the restarted process read the marked file again")
	}
	if got := read(t, s2.url, 91); got.Raw != before.Raw {
		t.Errorf("the restart changed the data")
	}

	// The marker is keyed by the file's content: the same records in a
	// changed file are read again, and every one counts once.
	s2.stop(t)
	var recs []json.RawMessage
	if err := json.Unmarshal(f.file, &recs); err != nil {
		t.Fatal(err)
	}
	changed, _ := json.Marshal(recs)
	if err := os.WriteFile(file, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	s3 := startServe(t, "tokenledger (changed file)", env)
	if _, r := apiTest(t, s3.url); !r.Migration.Ran || r.Migration.Migrated != 0 || r.Migration.AlreadyInDatabase != f.migrated {
		t.Errorf("changed file: migration %+v, want all %d records already in the database", r.Migration, f.migrated)
	}
	if got := read(t, s3.url, 91); got.Raw != before.Raw {
		t.Errorf("importing the same records again changed the data")
	}
	if tokenledger.DateOf(time.Now()) != f.today {
		t.Skip("the test crossed UTC midnight, which moved the retention window under it; run it again")
	}
}
