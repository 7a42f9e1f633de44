#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: measures tokenledger on this machine — HTTP
# single events on Redis against a bare net/http + INCR server, HTTP
# batches, reading 91 days, the cost per event as the store grows (Redis
# and the file), the server's memory and a CPU profile — and re-runs the
# stores' own go test benchmarks. Everything listens on loopback only and
# is stopped at the end. Takes under 10 minutes on 2 cores.
#
# Needs Go, redis-server, redis-cli, redis-benchmark and chromium: when
# they are missing and this runs as root, they are installed with apt-get.
# Not part of scripts/test.sh or CI.
#
#   scripts/bench.sh            # writes BENCHMARKS.md
#   scripts/bench.sh OUT.md     # writes OUT.md instead
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-BENCHMARKS.md}
start=$(date +%s)

need=()
for bin in redis-server redis-cli redis-benchmark; do
  command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench.sh: installing redis-server and redis-tools (missing: ${need[*]})" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  else
    echo "bench.sh: missing ${need[*]}; install redis-server and redis-tools (or run as root)" >&2
    exit 1
  fi
fi
# The dashboard's first render is measured in headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench.sh: installing chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "bench.sh: chromium is missing, so the dashboard's first render will not be measured (install chromium, or run as root)" >&2
  fi
fi
command -v go >/dev/null 2>&1 || { echo "bench.sh: Go is required" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
echo "bench.sh: building tokenledger and the ceiling server" >&2
go build -o "$bin/tokenledger" ./cmd/tokenledger
go build -o "$bin/ceiling" ./cmd/ceiling
go build -o "$bin/benchmd" ./cmd/benchmd

"$bin/benchmd" --bin "$bin" --out "$out"
echo "bench.sh: wrote $out in $(( $(date +%s) - start ))s" >&2
