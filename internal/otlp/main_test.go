package otlp_test

import (
	"os"
	"testing"

	"github.com/tokenledger/tokenledger/internal/testkit/redistest"
)

// TestMain stops the shared redis-server BenchmarkIngest starts.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
