#!/usr/bin/env bash
# soak.sh DURATION [soak flags]: builds tokenledger and cmd/soak and runs a
# soak of DURATION (e.g. 30m): two `tokenledger serve` instances on a real
# redis-server (loopback only) under a mixed load while Redis is SIGKILLed,
# SIGSTOPped and an instance SIGKILLed at seeded random times; then every
# acknowledged event must be counted exactly once. Extra flags go to soak
# (-seed N replays a fault schedule; -rate, -clients, -fault-min,
# -fault-max; see `go run ./cmd/soak -h`). Exit 0 only when lost and
# doubled are both 0.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: scripts/soak.sh DURATION [soak flags], e.g. scripts/soak.sh 30m" >&2
  exit 2
fi
duration=$1
shift
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "soak.sh: redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/tokenledger" ./cmd/tokenledger
go build -o "$bin/soak" ./cmd/soak
"$bin/soak" -d "$duration" -bin "$bin/tokenledger" "$@"
