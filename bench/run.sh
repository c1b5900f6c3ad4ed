#!/usr/bin/env bash
# bench/run.sh — trawl beside curl, xargs+curl, wget2, aria2c and wrk, all
# against one local server on 127.0.0.1, in one run.
#
#   bench/run.sh [all|S|L|T|M]...     (default: all)
#
# Scenarios (sizes can be overridden with S_N, T_N, M_SMALL, M_LARGE):
#   S  20,000 URLs of 1 KiB, concurrency 32, records to a file; wrk gives
#      the server's ceiling.
#   L  20 URLs of 50 MiB saved to disk, concurrency 4.
#   T  5,000 URLs, 1% of which take 500 ms, concurrency 32: input order
#      (plain, and with a wider reorder window) against completion order.
#   M  100,000 and 1,000,000 tiny URLs: trawl's peak RSS in both orders.
#
# Results are printed and written to bench/out/results.md. The machine is
# shared by the server and the client, so compare ratios within a run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
TMP=$(mktemp -d)
mkdir -p "$OUT"
SCENARIOS=${*:-all}
C=32

need() {
  local missing=()
  for cmd in curl wget2 aria2c wrk; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    local pkgs=("${missing[@]/aria2c/aria2}")
    echo "installing ${pkgs[*]} from Debian" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${pkgs[@]}" >/dev/null; }
  fi
}
need

go build -o "$OUT/trawl" .
go build -o "$OUT/server" ./bench/server
rm -f "$OUT/addr"
"$OUT/server" -addr-file "$OUT/addr" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$OUT/addr" ] && break; sleep 0.1; done
ADDR=$(cat "$OUT/addr")
TRAWL="$OUT/trawl"

{
  echo "## trawl benchmark, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); server and clients on 127.0.0.1."
  echo "Tools: $("$TRAWL" version); $(curl --version | head -1 | cut -d' ' -f1-2); $(wget2 --version | head -1); $(aria2c --version | head -1); wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)."
  echo
} > "$OUT/results.md"

# run SCENARIO NAME N CMD... : time one command, keep its row.
run() {
  local scenario=$1 name=$2 n=$3; shift 3
  if ! /usr/bin/time -f '%e %M' -o "$TMP/time" "$@" > /dev/null 2> "$TMP/err"; then
    echo "$name failed:" >&2; tail -5 "$TMP/err" >&2; return 1
  fi
  read -r secs rss < "$TMP/time"
  printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$name" "$n" "$secs" "$rss" >> "$TMP/rows"
  awk -v s="$secs" -v r="$rss" -v n="$n" -v name="$name" 'BEGIN { printf "  %-34s %8.2fs %10.0f URLs/s %8.1f MiB\n", name, s, n / s, r / 1024 }'
}

# table SCENARIO BASE [MB]: markdown rows for a scenario, one per tool with
# the median of its rounds, and the ratio of BASE's median time to each.
table() {
  local scenario=$1 base=$2
  {
    echo "| $scenario | rounds | median wall | URLs/s | MB/s | peak RSS | speed vs $base |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' -v sc="$scenario" -v base="$base" -v mb="${3:-0}" '
      function median(list,    a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return a[int((n + 1) / 2)] + 0
      }
      $1 == sc {
        if (!($2 in secs)) order[++k] = $2
        secs[$2] = secs[$2] " " $4; rss[$2] = (rss[$2] > $5 ? rss[$2] : $5); n[$2] = $3; rounds[$2]++
      }
      END {
        b = median(secs[base])
        for (i = 1; i <= k; i++) {
          name = order[i]; s = median(secs[name])
          printf "| %s | %d | %.2fs | %.0f | %s | %.1f MiB | %.2f |\n", name, rounds[name], s, n[name] / s,
            (mb > 0 ? sprintf("%.0f", n[name] * mb / s) : "–"), rss[name] / 1024, b / s
        }
      }' "$TMP/rows"
    echo
  } >> "$OUT/results.md"
}

want() { [[ " $SCENARIOS " == *" all "* || " $SCENARIOS " == *" $1 "* ]]; }

if want S; then
  N=${S_N:-20000}
  echo "S: $N URLs of 1 KiB, concurrency $C"
  awk -v a="$ADDR" -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "http://" a "/page/" i }' > "$TMP/s.txt"
  awk '{ printf "url = \"%s\"\noutput = \"/dev/null\"\n", $0 }' "$TMP/s.txt" > "$TMP/s.curl"
  # trawl caps requests per host at 8 by default; everything here is one
  # host, so the cap is raised to the concurrency, as the others have none.
  for round in 1 2 3; do
    run S "trawl (input order)" "$N" "$TRAWL" -q -c $C --per-host $C -o "$TMP/s.jsonl" "$TMP/s.txt"
    run S "trawl --unordered" "$N" "$TRAWL" -q -c $C --per-host $C --unordered -o "$TMP/s.jsonl" "$TMP/s.txt"
    run S "curl --parallel" "$N" curl -s --parallel --parallel-max $C -K "$TMP/s.curl"
    run S "xargs -P $C -n 50 curl" "$N" sh -c "xargs -P $C -n 50 curl -s < '$TMP/s.txt' > /dev/null"
    run S "wget2 --max-threads=$C" "$N" wget2 -q --max-threads=$C -i "$TMP/s.txt" -O /dev/null
    rm -rf "$TMP/aria"; mkdir -p "$TMP/aria"
    run S "aria2c -j $C (files)" "$N" aria2c -q -j $C -i "$TMP/s.txt" -d "$TMP/aria" --allow-overwrite=true --auto-file-renaming=false
  done
  wrk -t2 -c$C -d5s "http://$ADDR/page/1" > "$TMP/wrk" 2>&1
  rps=$(awk '/Requests\/sec/ { print $2 }' "$TMP/wrk")
  echo "  wrk -c $C (ceiling)                       $rps requests/s"
  echo "### S: $N URLs of 1 KiB, concurrency $C" >> "$OUT/results.md"
  echo >> "$OUT/results.md"
  table S "curl --parallel"
  echo "wrk with $C connections on one URL (the server's ceiling): $rps requests/s." >> "$OUT/results.md"
  echo >> "$OUT/results.md"
fi

if want L; then
  SIZE=$((50 << 20)); N=20; CL=4
  echo "L: $N URLs of 50 MiB saved to disk, concurrency $CL"
  awk -v a="$ADDR" -v n="$N" -v s="$SIZE" 'BEGIN { for (i = 0; i < n; i++) print "http://" a "/big/" s "?" i }' > "$TMP/l.txt"
  awk -v d="$TMP/l-curl" '{ printf "url = \"%s\"\noutput = \"%s/%d\"\n", $0, d, NR }' "$TMP/l.txt" > "$TMP/l.curl"
  for round in 1 2 3; do
    for tool in curl trawl wget2 aria2c; do
      rm -rf "$TMP/l-$tool"; mkdir -p "$TMP/l-$tool"
      case $tool in
        trawl) run L "trawl --output-dir" $N "$TRAWL" -q -c $CL --output-dir "$TMP/l-trawl" -o "$TMP/l.jsonl" "$TMP/l.txt" ;;
        curl) run L "curl --parallel" $N curl -s --parallel --parallel-max $CL -K "$TMP/l.curl" ;;
        wget2) run L "wget2 --max-threads=$CL" $N wget2 -q --max-threads=$CL -i "$TMP/l.txt" -P "$TMP/l-wget2" ;;
        aria2c) run L "aria2c -j $CL" $N aria2c -q -j $CL -i "$TMP/l.txt" -d "$TMP/l-aria2c" --allow-overwrite=true ;;
      esac
      # Check that each tool really saved everything before counting it.
      saved=$(du -sb "$TMP/l-$tool" | cut -f1)
      [ "$saved" -ge $((N * SIZE)) ] || echo "  warning: $tool saved only $saved bytes"
      rm -rf "$TMP/l-$tool"
    done
  done
  echo "### L: $N URLs of 50 MiB saved to disk, concurrency $CL" >> "$OUT/results.md"
  echo >> "$OUT/results.md"
  table L "curl --parallel" 50
fi

if want T; then
  N=${T_N:-5000}
  echo "T: $N URLs, 1% taking 500 ms, concurrency $C"
  awk -v a="$ADDR" -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "http://" a "/tail/" i }' > "$TMP/t.txt"
  for round in 1 2 3; do
    run T "trawl --unordered" "$N" "$TRAWL" -q -c $C --per-host $C --unordered -o "$TMP/t.jsonl" "$TMP/t.txt"
    run T "trawl (input order)" "$N" "$TRAWL" -q -c $C --per-host $C -o "$TMP/t.jsonl" "$TMP/t.txt"
    run T "trawl --reorder-window 32 (= -c)" "$N" "$TRAWL" -q -c $C --per-host $C --reorder-window 32 -o "$TMP/t.jsonl" "$TMP/t.txt"
  done
  echo "### T: $N URLs, 1% taking 500 ms, concurrency $C" >> "$OUT/results.md"
  echo >> "$OUT/results.md"
  table T "trawl --unordered"
fi

if want M; then
  echo "M: memory against list length"
  for n in ${M_SMALL:-100000} ${M_LARGE:-1000000}; do
    awk -v a="$ADDR" -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "http://" a "/tiny/" i }' > "$TMP/m.txt"
    run M "trawl, $n URLs, input order" "$n" "$TRAWL" -q -c $C --per-host $C -o "$TMP/m.jsonl" "$TMP/m.txt"
    run M "trawl, $n URLs, --unordered" "$n" "$TRAWL" -q -c $C --per-host $C --unordered -o "$TMP/m.jsonl" "$TMP/m.txt"
  done
  echo "### M: peak memory against list length (tiny bodies, concurrency $C)" >> "$OUT/results.md"
  echo >> "$OUT/results.md"
  table M "trawl, ${M_SMALL:-100000} URLs, input order"
fi

echo
cat "$OUT/results.md"
