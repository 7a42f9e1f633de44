package memstore_test

import (
	"testing"

	"github.com/tokenledger/tokenledger"
	"github.com/tokenledger/tokenledger/store/memstore"
	"github.com/tokenledger/tokenledger/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) tokenledger.Store {
		return memstore.New(o.Now, o.RetentionDays)
	})
}
