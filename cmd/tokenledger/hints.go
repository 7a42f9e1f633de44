package main

import (
	"errors"

	"github.com/tokenledger/tokenledger/store/fallback"
	"github.com/tokenledger/tokenledger/store/filestore"
)

// hinted is an error with the setting or flag that is the way out added
// to its sentence: the stores name no flag or environment variable, so
// that the same sentence fits every caller.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h hinted) Unwrap() error { return h.err }

// withHint returns err with the flag or variable a user of this command
// changes to get past it, for the store errors that have one, once.
func withHint(err error) error {
	if already := (hinted{}); errors.As(err, &already) {
		return err
	}
	var hint string
	switch {
	case errors.Is(err, filestore.ErrCorrupt):
		hint = "run tokenledger serve --repair"
	case errors.Is(err, filestore.ErrLocked), errors.Is(err, filestore.ErrUnknownVersion):
		hint = "TOKENLEDGER_FILE names the file"
	case errors.Is(err, fallback.ErrSpoolInUse):
		hint = "TOKENLEDGER_SPOOL_DIR names it; by default it lives next to TOKENLEDGER_FILE"
	default:
		return err
	}
	return hinted{err, hint}
}
