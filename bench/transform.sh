#!/usr/bin/env bash
# transform.sh — does the transform stage scale with its workers?
#
# Serves testdata/pages/article.html (a 50 KB article) from 127.0.0.1 as N
# pages and runs the CPU-bound chain text + links + css over them with
# --transform-concurrency 1 and 2, alternating, ROUNDS times each. Fetching
# small local pages is cheap, so the chain is the bottleneck; on a 2-CPU
# machine the ratio of the two wall times approaches 2 as far as the server
# (which shares the CPUs) allows.
#
#   bench/transform.sh [N] [ROUNDS]      defaults: 5000 3
set -euo pipefail

N=${1:-5000}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
[ -x /usr/bin/time ] || { echo "transform.sh needs GNU time (apt-get install -y time)" >&2; exit 2; }

go build -o "$OUT/trawl" .
go build -o "$OUT/server" ./bench/server
rm -f "$OUT/addr"
"$OUT/server" -addr-file "$OUT/addr" -page testdata/pages/article.html &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/addr" ] && break; sleep 0.1; done
ADDR=$(cat "$OUT/addr")
awk -v a="$ADDR" -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "http://" a "/page/" i }' > "$OUT/article-urls.txt"

echo "machine: $(nproc) CPUs; $N pages of $(wc -c < testdata/pages/article.html) bytes; chain: -x text -x links -x css=td.price"
: > "$OUT/transform.tsv"
for round in $(seq "$ROUNDS"); do
  for tc in 1 2; do
    /usr/bin/time -f '%e %M' -o "$OUT/time.txt" "$OUT/trawl" -q -c 16 --transform-concurrency "$tc" \
      -x text -x links -x css=td.price -o /dev/null "$OUT/article-urls.txt"
    read -r secs rss < "$OUT/time.txt"
    printf '%s\t%s\n' "$tc" "$secs" >> "$OUT/transform.tsv"
    awk -v r="$round" -v tc="$tc" -v s="$secs" -v m="$rss" -v n="$N" 'BEGIN {
      printf "round %d  --transform-concurrency %d  %6.2fs  %6.0f pages/s  %6.1f MiB peak RSS\n", r, tc, s, n / s, m / 1024 }'
  done
done
for tc in 1 2; do
  awk -F'\t' -v tc="$tc" '$1 == tc { print $2 }' "$OUT/transform.tsv" | sort -n |
    awk -v tc="$tc" '{ a[NR] = $1 } END { printf "median --transform-concurrency %d: %.2fs\n", tc, a[int((NR + 1) / 2)] }'
done | tee "$OUT/transform-median.txt"
awk '{ t[NR] = $NF + 0 } END { printf "speed-up from 1 to 2 workers: %.2fx\n", t[1] / t[2] }' "$OUT/transform-median.txt"
