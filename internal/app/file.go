package app

import (
	"fmt"
	"log/slog"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/internal/config"
)

// openFile opens the local file store. Until store/filestore lands, the
// file store is not part of the build.
func openFile(cfg config.Config, o Options, log *slog.Logger) (tokenledger.Store, error) {
	return nil, fmt.Errorf("the file store is not available in this build yet; set TOKENLEDGER_STORE=memory: %w", ErrNotInThisBuild)
}
