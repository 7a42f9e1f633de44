package app

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
	"github.com/tokenledger/tokenledger/store/filestore"
)

// openFile opens the local file store at cfg.File, first moving a corrupt
// file aside when o.Repair is set.
func openFile(cfg config.Config, o Options, log *slog.Logger) (tokenledger.Store, error) {
	if o.Repair {
		if err := repairFile(cfg.File, log); err != nil {
			return nil, err
		}
	}
	// filestore's errors name the file and the way out (--repair, another
	// TOKENLEDGER_FILE), so they are passed on as they are.
	st, err := filestore.Open(cfg.File, filestore.Options{Now: o.Now, RetentionDays: cfg.RetentionDays, Logger: log})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// repairFile moves a corrupt usage file (or journal) aside, logging what
// went where. A healthy file is left alone.
func repairFile(path string, log *slog.Logger) error {
	moved, err := filestore.Repair(path)
	switch {
	case errors.Is(err, filestore.ErrNothingToRepair):
		log.Info("🔧 --repair: nothing to repair", slog.String("file", path))
		return nil
	case err != nil:
		return fmt.Errorf("repair %s: %w", path, err)
	}
	for _, m := range moved {
		log.Warn("🔧 --repair: moved a corrupt file aside; it is kept for inspection", slog.String("file", path), slog.String("movedTo", m))
	}
	return nil
}
