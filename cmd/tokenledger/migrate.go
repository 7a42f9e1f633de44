package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tokenledger/tokenledger/internal/app"
	"github.com/tokenledger/tokenledger/internal/migrate"
	"github.com/tokenledger/tokenledger/store/filestore"
)

const migrateUsage = `Usage: tokenledger migrate [--file F] [--dry-run] [--json]

Imports a local usage file — the original service's JSON array or
tokenledger's own format — into the configured database (REDIS_URL, or
KV_REST_API_URL and KV_REST_API_TOKEN). Every record keeps its id and is
counted once, however often the migration runs and on however many
instances; nothing in the database is deleted or overwritten. Records older
than the retention window and invalid records are skipped and counted.
After success the file is renamed to <name>.migrated (or, where it cannot
be, a marker is left in the database). serve does the same on start. A
migrated file can be imported again by hand with --file <name>.migrated
(every record still counts once); it keeps its name.
`

func runMigrate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("migrate")
	verboseFlag(fs, &e)
	file := fs.String("file", "", "the file to import (default TOKENLEDGER_FILE, else logs/token_usage.json)")
	dry := fs.Bool("dry-run", false, "read and count, but write, rename and mark nothing")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args, migrateUsage, e.stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return err
	}
	path := cfg.File
	if *file != "" {
		path = *file
	}
	// The file, or the journals a file store stopped without a clean
	// Close leaves behind it.
	if files, err := filestore.Files(path); err != nil {
		return fmt.Errorf("migrate: cannot read %s: %w", path, err)
	} else if len(files) == 0 {
		if done := migrate.MigratedCopies(path); len(done) > 0 {
			last := done[len(done)-1]
			return fmt.Errorf("migrate: %s was already migrated: it is now %s; to import that file again (say, after a reset), give --file %s", path, last, last)
		}
		return fmt.Errorf("migrate: cannot read %s: %w", path, os.ErrNotExist)
	}
	a, err := openApp(ctx, e, cfg, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.MigrateFile(ctx, path, *dry, progressPrinter(e.stderr))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	verb := "migrated"
	if res.DryRun {
		verb = "would migrate"
	}
	fmt.Fprintf(e.stdout, "%s: %d records read, %s %d, %d already in the database; skipped %d expired, %d invalid, %d duplicates\n",
		path, res.Records, verb, res.Migrated, res.AlreadyThere, res.SkippedExpired, res.SkippedInvalid, res.DuplicatesInFile)
	switch {
	case res.NameKept:
		fmt.Fprintf(e.stdout, "%s keeps its name: it is named as a migrated file already\n", path)
	case res.RenamedTo != "":
		fmt.Fprintf(e.stdout, "renamed to %s\n", res.RenamedTo)
	case res.Marked:
		fmt.Fprintln(e.stdout, "could not rename the file; a marker in the database keeps serve from importing it again")
	}
	return nil
}

// progressPrinter returns a progress callback: a bar redrawn in place on a
// terminal, plain lines (at most one per tenth) otherwise.
func progressPrinter(w io.Writer) func(done, total int) {
	terminal := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			terminal = true
		}
	}
	lastTenth := -1
	return func(done, total int) {
		if total == 0 {
			return
		}
		if terminal {
			const width = 30
			filled := done * width / total
			fmt.Fprintf(w, "\r[%s%s] %d/%d records", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
			if done == total {
				fmt.Fprintln(w)
			}
			return
		}
		if tenth := done * 10 / total; tenth != lastTenth {
			lastTenth = tenth
			fmt.Fprintf(w, "migrate: %d/%d records (%d%%)\n", done, total, done*100/total)
		}
	}
}
