#!/usr/bin/env bash
# .ci/warc/check.sh: trawl's WARC output read by an independent reader,
# webrecorder's warcio (installed from npm into a temporary directory),
# against a local test site (.ci/warc/server: 1,000 URLs of HTML, JSON,
# chunked pages, identical payloads, a 404, a 3-hop redirect chain, a
# gzip-encoded page and a 20 MiB body). check.mjs says what is checked.
#
#   bash .ci/warc/check.sh      (.ci/run calls it)
#
#   1. one run with --dedupe: every record readable, digests right, each URL
#      once with its status, revisits for the identical payloads;
#   2. the net/http engine, with files rotating at 256 KiB: the same checks;
#   3. kill -9 at random moments, four times, each followed by --resume,
#      then a last --resume to the end: the WARC files are whole, and each
#      URL is archived exactly once.
# Every wait is bounded; the whole takes well under 3 minutes on 2 CPUs.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

LIMIT=120 # seconds any one step may take
TMP=$(mktemp -d)
PIDS=()
say() { printf '%s\n' "warc-ci [${SECONDS}s]: $*"; }
fail() {
  printf '%s\n' "warc-ci: FAIL: $*" >&2
  exit 1
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

say "installing warcio from npm"
timeout "$LIMIT" npm install --prefix "$TMP/npm" --no-audit --no-fund --loglevel=error warcio@2.4.11 > "$TMP/npm.log" 2>&1 ||
  { cat "$TMP/npm.log"; fail "npm install warcio"; }
WARCIO="$TMP/npm/node_modules/.bin/warcio"
"$WARCIO" --version > /dev/null || fail "warcio does not run"

say "building trawl and the test server"
timeout "$LIMIT" go build -o "$TMP/trawl" . || fail "go build trawl"
timeout "$LIMIT" go build -o "$TMP/server" ./.ci/warc/server || fail "go build the server"

# start_server NAME [ARGS...]: starts a server, waits for its address.
start_server() {
  local name=$1
  shift
  "$TMP/server" -addr-file "$TMP/$name.addr" -urls "$TMP/$name.urls" "$@" 2> "$TMP/$name.log" &
  PIDS+=($!)
  local i
  for i in $(seq 100); do
    [ -s "$TMP/$name.addr" ] && return 0
    sleep 0.1
  done
  cat "$TMP/$name.log"
  fail "the test server did not start within 10s"
}

check() {
  timeout "$LIMIT" node .ci/warc/check.mjs --warcio "$WARCIO" --urls "$TMP/site.urls" "$@" || fail "the WARC check failed ($*)"
}

start_server site
say "1. one run, lean engine, --dedupe"
timeout "$LIMIT" "$TMP/trawl" -q --warc "$TMP/w1/" --dedupe -o "$TMP/w1.jsonl" -c 16 --per-host 16 --max-failures 1 "$TMP/site.urls" ||
  fail "trawl exited $?"
check --dir "$TMP/w1" --jsonl "$TMP/w1.jsonl" --revisits

say "2. the net/http engine, files rotating at 256 KiB"
timeout "$LIMIT" "$TMP/trawl" -q --engine net --warc "$TMP/w2/site" --warc-max-size 256KiB -o "$TMP/w2.jsonl" -c 16 --per-host 16 --max-failures 1 "$TMP/site.urls" ||
  fail "trawl exited $?"
n=$(find "$TMP/w2" -name 'site-*.warc.gz' | wc -l)
[ "$n" -ge 3 ] || fail "want the WARC in at least 3 files at --warc-max-size 256KiB, got $n"
check --dir "$TMP/w2" --jsonl "$TMP/w2.jsonl"

say "3. kill -9 at random moments, then --resume"
start_server slow -delay 15ms
run3=("$TMP/trawl" -q --resume --warc "$TMP/w3/" -o "$TMP/w3.jsonl" -c 8 --per-host 8 --max-failures 1 --flush-interval 200ms "$TMP/slow.urls")
for kill in 1 2 3 4; do
  "${run3[@]}" 2> "$TMP/kill$kill.log" &
  pid=$!
  ms=$((300 + RANDOM % 900))
  sleep "$(printf '0.%03d' "$ms")"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  say "   killed after ${ms}ms: $(wc -l < "$TMP/w3.jsonl" 2> /dev/null || echo 0) records, $(du -sk "$TMP/w3" | cut -f1) KiB of WARC"
  [ "${WARC_CI_VERBOSE:-}" = "" ] || cat "$TMP/kill$kill.log"
done
timeout "$LIMIT" "${run3[@]}" || fail "the last --resume exited $?"
timeout "$LIMIT" node .ci/warc/check.mjs --warcio "$WARCIO" --urls "$TMP/slow.urls" --dir "$TMP/w3" --jsonl "$TMP/w3.jsonl" ||
  fail "the WARC check after the kills failed"
say "all WARC checks passed"
