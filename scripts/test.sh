#!/usr/bin/env bash
# Runs every check of tokenledger: gofmt, go vet, all tests with the race
# detector, and each fuzz target for a bounded time. Redis-backed tests
# need redis-server, the dashboard's tests Chromium, the proxy's tests
# Node with the providers' official clients: when one is missing and this
# runs as root, it is installed with apt-get (the clients with npm, from
# the pinned lock file, as any user); otherwise those tests skip (or
# fail, when TOKENLEDGER_REQUIRE_REDIS=1 / TOKENLEDGER_REQUIRE_BROWSER=1
# / TOKENLEDGER_REQUIRE_NODE=1, as in CI).
# Exits non-zero when anything fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# install_missing PACKAGES… installs Debian packages with apt-get when
# this runs as root (and says what will skip otherwise).
updated=
install_missing() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing $* with apt-get" >&2
    if [ -z "$updated" ]; then apt-get update -qq && updated=1; fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
      echo "test.sh: warning: installing $* failed; the tests that need it will skip (or fail in CI)" >&2
    fi
  else
    echo "test.sh: warning: $* not installed and this is not root; the tests that need it will skip (or fail in CI)" >&2
  fi
}
command -v redis-server >/dev/null 2>&1 || install_missing redis-server redis-tools
# The disk-fault tests make an ext4 image and mount it (root only).
command -v mkfs.ext4 >/dev/null 2>&1 || install_missing e2fsprogs
# The dashboard's tests drive a real headless Chromium.
if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  install_missing chromium
fi

# The proxy's tests drive the official openai, @anthropic-ai/sdk and
# @google/genai clients (internal/proxy/sdktest); the OTLP tests drive the
# Vercel AI SDK and OpenTelemetry JS's exporters (internal/otlp/aisdktest).
# Each is pinned in its package-lock.json.
command -v node >/dev/null 2>&1 || install_missing nodejs npm
for sdk in internal/proxy/sdktest internal/otlp/aisdktest; do
  if command -v npm >/dev/null 2>&1 && ! (cd "$sdk" && npm ls --silent >/dev/null 2>&1); then
    echo "test.sh: installing the pinned npm packages into $sdk/node_modules (npm ci)" >&2
    (cd "$sdk" && npm ci --no-audit --no-fund --silent) ||
      echo "test.sh: warning: npm ci in $sdk failed; its tests will skip (or fail in CI)" >&2
  fi
done

status=0

echo "== gofmt -l"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change these files:" >&2
  echo "$unformatted" >&2
  status=1
fi

echo "== go vet ./..."
go vet ./... || status=1

# -count=1: every test runs, even when Go's cache holds a pass for the
# same code (a cached pass says nothing about the redis-server here now).
# -artifacts keeps what tests save for a reviewer (the dashboard's
# screenshots) under test-artifacts/.
echo "== go test -race -count=1 -timeout 15m ./..."
rm -rf test-artifacts && mkdir -p test-artifacts
go test -race -count=1 -timeout 15m -artifacts -outputdir "$PWD/test-artifacts" ./... || status=1

# fuzz_one PKG NAME fuzzes one target with one worker for $fuzztime and
# prints its output in one piece; it fails only for a real failure.
fuzz_one() {
  local pkg=$1 name=$2 out code
  out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 1 -fuzzminimizetime 5s "$pkg" 2>&1)
  code=$?
  printf '== go test -fuzz ^%s$ -fuzztime %s -parallel 1 %s\n%s\n' "$name" "$fuzztime" "$pkg" "$out"
  [ "$code" -eq 0 ] && return 0
  # Go 1.26's fuzz coordinator can fail a target with a bare "context
  # deadline exceeded" when -fuzztime ends while a worker is busy
  # (go.dev/issue/75804, fixed in Go 1.27): no input failed and none
  # was written. Only that exact outcome is a warning; a failing input
  # ("Failing input written to ...") or any other failure fails the run.
  if ! grep -q "Failing input written to" <<<"$out" &&
    grep -q "^    context deadline exceeded$" <<<"$out" &&
    [ "$(grep -c -- "^--- FAIL" <<<"$out")" = 1 ]; then
    echo "test.sh: warning: ${name} stopped with Go's fuzztime race (go.dev/issue/75804), not a failing input" >&2
    return 0
  fi
  return 1
}

# Each fuzz target runs for a bounded time (TOKENLEDGER_FUZZTIME, default
# 10s; 0 skips the step), two at a time with one worker each, so that one
# target's build overlaps another's fuzzing. A crash fails the run and
# leaves its input in the package's testdata/fuzz/<Target>/, where it
# becomes a regression case.
fuzztime="${TOKENLEDGER_FUZZTIME:-10s}"
if [ "$fuzztime" != "0" ]; then
  running=()
  for target in \
    ".:FuzzDecodeEvents" ".:FuzzDecodeFast" ".:FuzzPlainDollars" ".:FuzzParseDollars" "./pricing:FuzzParse" \
    "./internal/httpapi:FuzzQuery" "./capture:FuzzBody" "./internal/otlp:FuzzSpans" \
    "./store/filestore:FuzzScan" "./store/filestore:FuzzOpen" "./store/filestore:FuzzFastPath" \
    "./store/internal/jsonenc:FuzzAppendString" \
    "./store/redis/kvrest:FuzzDecodeReplies" "./store/redis/kvrest:FuzzStoreReplies" \
    "./capture:FuzzStream" "./internal/proxy:FuzzRequest" "./internal/proxy:FuzzPath"; do
    fuzz_one "${target%%:*}" "${target##*:}" &
    running+=("$!")
    if [ "${#running[@]}" -ge 2 ]; then
      wait "${running[0]}" || status=1
      running=("${running[@]:1}")
    fi
  done
  for pid in "${running[@]}"; do
    wait "$pid" || status=1
  done
fi

if [ "$status" -ne 0 ]; then
  echo "test.sh: FAILED" >&2
else
  echo "test.sh: all checks passed"
fi
exit "$status"
