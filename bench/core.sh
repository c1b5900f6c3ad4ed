#!/usr/bin/env bash
# core.sh — trawl beside curl --parallel on the same local URL list.
#
# Starts bench/server on 127.0.0.1, fetches N small pages with each tool at
# concurrency C, several rounds alternating the tools, and prints wall time,
# URLs/s and peak RSS per run plus the median ratio. Everything runs on this
# machine; nothing touches the network.
#
#   bench/core.sh [N] [C] [ROUNDS]      defaults: 10000 32 3
set -euo pipefail

N=${1:-10000}
C=${2:-32}
ROUNDS=${3:-3}
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"

command -v curl >/dev/null || { echo "core.sh needs curl (apt-get install -y curl)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "core.sh needs GNU time (apt-get install -y time)" >&2; exit 2; }

go build -o "$OUT/trawl" .
go build -o "$OUT/server" ./bench/server
rm -f "$OUT/addr"
"$OUT/server" -addr-file "$OUT/addr" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/addr" ] && break; sleep 0.1; done
ADDR=$(cat "$OUT/addr")

: > "$OUT/urls.txt"
: > "$OUT/curl.cfg"
for i in $(seq 0 $((N - 1))); do
  echo "http://$ADDR/page/$i" >> "$OUT/urls.txt"
  printf 'url = "http://%s/page/%d"\noutput = "/dev/null"\n' "$ADDR" "$i" >> "$OUT/curl.cfg"
done

echo "curl: $(curl --version | head -1)"
echo "trawl: $("$OUT/trawl" version)"
echo "machine: $(nproc) CPUs; $N URLs of ~1 KiB from 127.0.0.1; concurrency $C"
echo

# run NAME CMD... : one timed run, appended to $OUT/results.tsv
run() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$OUT/time.txt" "$@" > /dev/null 2> "$OUT/$name.err" || {
    echo "$name failed:"; cat "$OUT/$name.err"; exit 1; }
  read -r secs rss < "$OUT/time.txt"
  printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >> "$OUT/results.tsv"
  awk -v n="$N" -v s="$secs" -v r="$rss" -v name="$name" \
    'BEGIN { printf "%-22s %7.2fs %9.0f URLs/s %7.1f MiB peak RSS\n", name, s, n / s, r / 1024 }'
}

: > "$OUT/results.tsv"
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  run trawl "$OUT/trawl" -q -c "$C" -o /dev/null "$OUT/urls.txt"
  run trawl-unordered "$OUT/trawl" -q -c "$C" --unordered -o /dev/null "$OUT/urls.txt"
  run curl-parallel curl -s --parallel --parallel-max "$C" -K "$OUT/curl.cfg"
done

echo
echo "median of $ROUNDS rounds:"
for name in trawl trawl-unordered curl-parallel; do
  awk -v name="$name" -F'\t' '$1 == name { print $2 }' "$OUT/results.tsv" | sort -n |
    awk -v name="$name" -v n="$N" '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "%-22s %7.2fs %9.0f URLs/s\n", name, m, n / m }'
done | tee "$OUT/median.txt"
awk '{ t[$1] = $2 } END { printf "curl-parallel / trawl wall time: %.2f\n", t["curl-parallel"] / t["trawl"] }' "$OUT/median.txt"
