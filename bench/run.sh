#!/usr/bin/env bash
# bench/run.sh — trawl beside curl, xargs+curl, wget2, aria2c, wrk and two
# plain Go fetchers (bench/ref), every one against the same local servers
# in the same run, in one command.
#
#   bench/run.sh [all|S|L|H|T|M|HTTPS]...     (default: all)
#
# Scenarios (the variables in brackets override the sizes):
#   S      20,000 × 1 KiB from nginx, 32 connections [S_N, S_C]; wrk on one
#          URL gives the ceiling [WRK_SECS].
#   L      20 × 50 MiB from nginx saved to disk, 4 connections, timed until
#          the data is on disk [L_N, L_MIB, L_C].
#   H      60,000 × 1 KiB over 200 loopback hosts (127.0.1.1 ...) that each
#          answer after 50 ms, 1,000 in flight [H_N, H_HOSTS, H_DELAY_MS, H_C].
#   T      5,000 URLs of which 1% take 500 ms, 32 in flight: input order
#          against completion order [T_N, T_C].
#   M      trawl's peak memory at 100,000 and 1,000,000 tiny URLs
#          [M_SMALL, M_LARGE, M_C].
#   HTTPS  nginx with a self-signed certificate: 20,000 × 1 KiB over HTTP/2
#          and over HTTP/1.1+TLS, 5,000 URLs with a new connection (and
#          handshake) per URL, and 20 × 50 MiB over HTTP/2 to disk
#          [HTTPS_N, HTTPS_K0_N, HTTPS_L_N, HTTPS_C, CERT_KEY=ec|rsa].
#
# Every tool runs ROUNDS times (default 3; S_ROUNDS, L_ROUNDS, ... override
# it per scenario; S, short and the noisiest, runs ROUNDS+2 times, and M
# once unless M_ROUNDS says otherwise), the tools
# of a scenario taking turns, in an order that rotates from round to round.
# The table gives the median wall time and its spread (min–max), the rate
# at the median, the peak RSS (largest over the rounds, from GNU time: for
# a pipeline such as xargs+curl, that of its largest single process), the
# median CPU seconds (user+sys of the tool and everything it waited for)
# and a ratio against the scenario's baseline. Each run is also checked
# (every URL answered 200, every byte saved, the protocol expected); a run
# that fails its check is left out of the medians and said so. The check
# column also gives the connections the run opened, as the server counted
# them (nginx's stub_status, bench/server's /conns).
#
# Results are printed and written to bench/out/results.md. The servers and
# the clients share the machine's CPUs, so compare within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /usr/local/go/bin ] && PATH=/usr/local/go/bin:$PATH
OUT=bench/out
mkdir -p "$OUT"
RESULTS=$OUT/results.md

SCENARIOS=" ${*:-all} "
for s in $SCENARIOS; do
  case $s in all | S | L | H | T | M | HTTPS) ;; *)
    echo "usage: bench/run.sh [all|S|L|H|T|M|HTTPS]..." >&2; exit 2 ;;
  esac
done
want() { [[ $SCENARIOS == *" all "* || $SCENARIOS == *" $1 "* ]]; }

ROUNDS=${ROUNDS:-3}
WRK_SECS=${WRK_SECS:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-600} # seconds: no single run may take longer

TMP=$(mktemp -d)
PIDS=()  # servers
CHILD=   # the run being timed, leader of its own process group
cleanup() {
  local p
  if [ -n "$CHILD" ]; then
    # trawl takes up to its --shutdown-grace (5 s) to stop after SIGTERM.
    kill -TERM -- -"$CHILD" 2>/dev/null || true
    for p in $(seq 50); do kill -0 -- -"$CHILD" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- -"$CHILD" 2>/dev/null || true
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ------------------------------------------------------------------

need() {
  local missing=() cmd
  for cmd in curl wget2 aria2c wrk nginx openssl; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    local pkgs=("${missing[@]/aria2c/aria2}")
    echo "installing ${pkgs[*]} from Debian" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 ||
      { $sudo apt-get update >/dev/null && $sudo apt-get install -y "${pkgs[@]}" >/dev/null; }
  fi
}
need
# 1,000 connections in flight, plus files: more than a default soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

go build -o "$OUT/trawl" .
go build -o "$OUT/server" ./bench/server
(cd bench/ref && go build -o ../out/ref-nethttp ./nethttp && go build -o ../out/ref-fasthttp ./fasthttp)
TRAWL=$OUT/trawl
NETHTTP=$OUT/ref-nethttp
FASTHTTP=$OUT/ref-fasthttp

# --- servers ----------------------------------------------------------------

# wait_file PID FILE: wait until a server started as PID has written FILE.
wait_file() {
  local _
  for _ in $(seq 100); do
    [ -s "$2" ] && return 0
    kill -0 "$1" 2>/dev/null || { echo "server $1 exited before writing $2" >&2; return 1; }
    sleep 0.1
  done
  echo "server $1 did not write $2 in 10s" >&2; return 1
}

# The Go server (bench/server) on 127.0.0.1, for T and M: /tail/N, /tiny/N.
GO_ADDR=
go_server() {
  [ -n "$GO_ADDR" ] && return 0
  "$OUT/server" -addr-file "$TMP/go.addr" &
  PIDS+=($!)
  wait_file $! "$TMP/go.addr"
  GO_ADDR=$(cat "$TMP/go.addr")
}

# nginx, for S, L and HTTPS: one 1 KiB HTML page for every /page/N, one
# file of L_MIB MiB for every /big/N; plain HTTP, HTTP/2 over TLS, HTTP/1.1
# over TLS, and HTTP/1.1 over TLS with keepalive_timeout 0 (a connection,
# so a handshake, per URL), each on a port of its own.
#
# One worker process: the machine's CPUs are shared by the server and the
# client measured, and one worker leaves the client a CPU of its own while
# the server gets one, the same for every tool (two workers would compete
# with the client for both, and favour whichever tool loses least to that).
# Access log off (its writes would be measured too); keepalive_requests
# raised from nginx's 1000, so that no client has to reconnect during a run.
NGINX_UP=
L_MIB=${L_MIB:-50}
nginx_server() {
  [ -n "$NGINX_UP" ] && return 0
  local ng=$TMP/nginx try
  mkdir -p "$ng/www"
  # The page: exactly 1024 bytes of HTML, with a title.
  {
    printf '<html><head><title>page</title></head><body><p>'
    head -c 2000 /dev/zero | tr '\0' 'x'
  } | head -c $((1024 - 18)) > "$ng/www/page.html"
  printf '</p></body></html>' >> "$ng/www/page.html"
  head -c $((L_MIB << 20)) /dev/urandom > "$ng/www/big.bin"
  # A self-signed certificate for 127.0.0.1 and localhost. ECDSA P-256 by
  # default, the cheaper handshake (CERT_KEY=rsa: RSA 2048).
  local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  [ "${CERT_KEY:-ec}" = rsa ] && key=(-newkey rsa:2048)
  openssl req -x509 "${key[@]}" -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$ng/key.pem" -out "$ng/cert.pem" 2>/dev/null
  for try in 1 2 3 4 5; do
    # nginx cannot be told to take port 0 and report it: ask for free
    # ports, start at once, and start again on new ones if one was taken.
    read -r NG_HTTP NG_H2 NG_H1 NG_K0 <<< "$("$OUT/server" -free-ports 4 | tr '\n' ' ')"
    cat > "$ng/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  root $ng/www;
  default_type application/octet-stream;
  ssl_certificate $ng/cert.pem;
  ssl_certificate_key $ng/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$NG_HTTP;
    listen 127.0.0.1:$NG_H2 ssl http2;  # nginx 1.22: http2 is a listen parameter
    listen 127.0.0.1:$NG_H1 ssl;
    location /page/ { default_type text/html; try_files /page.html =404; }
    location /big/ { try_files /big.bin =404; }
    location = /nginx-status { stub_status; }
  }
  server {
    listen 127.0.0.1:$NG_K0 ssl;
    keepalive_timeout 0;
    location /page/ { default_type text/html; try_files /page.html =404; }
  }
}
EOF
    nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/error.log" 2>> "$ng/error.log" &
    local pid=$! _
    PIDS+=($pid)
    for _ in $(seq 50); do
      kill -0 $pid 2>/dev/null || break
      if curl -sf -o /dev/null "http://127.0.0.1:$NG_HTTP/page/0" &&
        curl -sfk -o /dev/null "https://127.0.0.1:$NG_K0/page/0"; then
        NGINX_UP=1
        return 0
      fi
      sleep 0.1
    done
    kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    echo "nginx did not start (try $try):" >&2; tail -3 "$ng/error.log" >&2
  done
  return 1
}

# accepted: the connections the server COUNT_CONNS names has accepted so
# far, this query's own included: "nginx" (its stub_status) or "go:ADDR"
# (bench/server's /conns at ADDR).
accepted() {
  case $COUNT_CONNS in
    nginx) curl -s "http://127.0.0.1:$NG_HTTP/nginx-status" | awk 'NR == 3 { print $1 }' ;;
    go:*) curl -s "http://${COUNT_CONNS#go:}/conns" ;;
  esac
}

# --- measuring --------------------------------------------------------------

# Rows: scenario, kind (trawl|peer|ref|ceiling), name, URLs, wall s, peak
# RSS KiB, CPU s, ok (1|0), note (what the check found), baseline row.
: > "$TMP/rows"

# timed CMD...: run CMD once under GNU time (and a timeout), its stdout in
# $TMP/stdout and stderr in $TMP/stderr; sets RC, WALL (s), RSS (KiB, the
# peak of the largest process) and CPU (user+sys s, waited-for children
# included).
timed() {
  RC=0
  CMDLINE=$(show_cmd "$@")
  # Also count the connections the run opened (CONNS), from the server.
  local c0=
  CONNS=
  [ -n "${COUNT_CONNS:-}" ] && c0=$(accepted)
  # In the background and waited for, so that an interrupt is handled at
  # once (bash runs traps only between foreground commands), and in a
  # process group of its own (timeout's, which it kills when the time is
  # up), so that cleanup stops the tool and all its children too.
  rm -f "$TMP/time"
  setsid -w timeout "$RUN_TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$TMP/time" "$@" > "$TMP/stdout" 2> "$TMP/stderr" &
  CHILD=$!
  wait "$CHILD" || RC=$?
  CHILD=
  # Killed at the timeout, GNU time wrote nothing.
  [ -s "$TMP/time" ] || echo "$RUN_TIMEOUT 0 0 0" > "$TMP/time"
  local usr sys
  read -r WALL RSS usr sys < <(tail -1 "$TMP/time")
  [ -n "$c0" ] && CONNS=$(($(accepted) - c0 - 1))
  # GNU time has hundredths: a run too short to show is taken as 0.01 s.
  [ "$WALL" = 0.00 ] && WALL=0.01
  CPU=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

# show_cmd ARG...: the command as one line a shell would take back, with
# the temporary directory written $TMP.
show_cmd() {
  local a out=() q="'"
  for a in "$@"; do
    if [[ $a =~ ^[][A-Za-z0-9_./:=,+@%-]+$ ]]; then
      out+=("${a//$TMP/\$TMP}")
    else
      out+=("'${a//$q/$q\\$q$q}'")
    fi
  done
  echo "${out[*]}"
}

# row SCEN KIND NAME N OK NOTE: keep one run's figures (WALL, RSS, CPU);
# BASE, when set, names the row this one is compared with.
row() {
  local note=${6//$'\t'/ }; note=${note//$'\n'/; }
  [ -n "$CONNS" ] && note="$note; $CONNS connection$([ "$CONNS" = 1 ] || echo s)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$WALL" "$RSS" "$CPU" "$5" "$note" "${BASE:--}" >> "$TMP/rows"
  grep -q -F -x "$1"$'\t'"$3" "$TMP/cmdnames" 2>/dev/null ||
    { printf '%s\t%s\n' "$1" "$3" >> "$TMP/cmdnames"; printf '%s\t%s\t%s\n' "$1" "$3" "$CMDLINE" >> "$TMP/cmds"; }
  awk -v s="$WALL" -v r="$RSS" -v c="$CPU" -v n="$4" -v name="$3" -v ok="$5" -v note="$note" -v mib="${RATE_MIB:-0}" 'BEGIN {
    rate = n / s; unit = "URLs/s"; if (mib > 0) { rate *= mib; unit = "MiB/s" }
    printf "  %-48s %7.2fs %9.0f %-6s %7.1f MiB %6.2f CPU s  %s\n", name, s, rate, unit, r / 1024, c, (ok ? "" : "FAILED ") note }'
}

# measure SCEN KIND NAME N CHECK CMD...: one timed run of CMD, then the
# shell command CHECK, which prints a note and succeeds when the run did
# what it should (every URL fetched, every byte saved, ...).
measure() {
  local scen=$1 kind=$2 name=$3 n=$4 check=$5 ok=1 note; shift 5
  timed "$@"
  if [ "$RC" -ne 0 ]; then
    ok=0; note="exit $RC: $(grep -v '^[[:space:]]*$' "$TMP/stderr" | tail -1 | cut -c1-100)"
  elif ! note=$(eval "$check" 2>&1); then
    ok=0
  fi
  row "$scen" "$kind" "$name" "$n" "$ok" "$note"
}

# Checks, run by measure after a run that exited 0.
# count N: the reference fetcher's one line says N.
count_is() {
  local got; got=$(tail -1 "$TMP/stdout")
  [ "$got" = "$1" ] || { echo "$got of $1 answered 200"; return 1; }
  echo "$1 × 200"
}
# codes N [VERSION]: curl's -w lines on stdout, one per URL: N lines "200",
# or "200 VERSION".
codes_are() {
  local want="200${2:+ $2}" got
  got=$(grep -c -x -- "$want" "$TMP/stdout" || true)
  [ "$got" = "$1" ] || { echo "$got of $1 lines '$want'"; return 1; }
  echo "$1 × 200${2:+, all HTTP/$2}"
}
# records FILE N [PROTO] [TITLE]: trawl's records say 200 (and PROTO, and
# a title) for all N URLs.
records_are() {
  local file=$1 n=$2 got
  got=$(grep -c '"status":200,' "$file" || true)
  [ "$got" = "$n" ] || { echo "$got of $n records with status 200"; return 1; }
  local note="$n × 200"
  if [ -n "${3:-}" ]; then
    got=$(grep -c "\"proto\":\"$3\"" "$file" || true)
    [ "$got" = "$n" ] || { echo "$got of $n records with proto $3"; return 1; }
    note="$note, all $3"
  fi
  if [ -n "${4:-}" ]; then
    got=$(grep -c "\"$4\":\"page " "$file" || true)
    [ "$got" = "$n" ] || { echo "$got of $n records with a $4"; return 1; }
    note="$note, $n titles"
  fi
  echo "$note"
}
# files DIR N BYTES: DIR holds N files of BYTES bytes each, nothing else.
files_are() {
  local got nf nb bad
  got=$(find "$1" -type f -printf '%s\n' | awk -v want="$3" '{ n++; b += $1; if ($1 != want) bad++ } END { printf "%d %d %d", n, b, bad }')
  read -r nf nb bad <<< "$got"
  [ "$nf" = "$2" ] && [ "$bad" = 0 ] || { echo "$nf files, $nb bytes; want $2 × $3"; return 1; }
  echo "$2 files, $nb bytes"
}
# measure_wrk SCEN NAME URL C: wrk with C connections on one URL for
# WRK_SECS; the URL count and the wall time are wrk's own (requests done,
# and its duration), so that the rate is its requests per second.
measure_wrk() {
  local scen=$1 name=$2 ok=1 note="no errors" line
  timed wrk -t2 "-c$4" "-d${WRK_SECS}s" "$3"
  line=$(grep -E '^ *[0-9]+ requests in [0-9.]+(us|ms|s|m)' "$TMP/stdout" || true)
  if [ "$RC" -ne 0 ] || [ -z "$line" ]; then
    ok=0; note="exit $RC: $(tail -1 "$TMP/stderr")"; line="0 requests in 1s"
  elif grep -q -E 'Non-2xx|Socket errors' "$TMP/stdout"; then
    ok=0; note=$(grep -E 'Non-2xx|Socket errors' "$TMP/stdout" | tr -s ' ' | tr '\n' ' ')
  fi
  local n
  read -r n WALL < <(awk '{ d = $4; sub(/,$/, "", d)
    if (d ~ /us$/) { sub(/us$/, "", d); d /= 1e6 } else if (d ~ /ms$/) { sub(/ms$/, "", d); d /= 1000 }
    else if (d ~ /m$/) { sub(/m$/, "", d); d *= 60 } else sub(/s$/, "", d)
    print $1, d }' <<< "$line")
  row "$scen" ceiling "$name" "$n" "$ok" "$note"
}

# SYNCED CMD...: CMD then sync, in one process to time: a tool is done when
# its data is on disk, not when it is in the page cache. sync is system
# wide, so before each such run another sync writes back what earlier runs
# left, and each tool pays only for its own writes.
SYNCED=(sh -c '"$@"; rc=$?; sync; exit $rc' synced)

# rounds R TOOLS FN: run FN 0 .. FN TOOLS-1 in R rounds, starting one tool
# later each round, so that no tool always follows the same other one.
rounds() {
  local r=$1 k=$2 fn=$3 round i
  for round in $(seq 0 $((r - 1))); do
    echo " round $((round + 1))/$r"
    for i in $(seq 0 $((k - 1))); do "$fn" $(((i + round) % k)); done
  done
}

# table SCEN TITLE BASE [MODE] [UNIT] [LABEL]: the scenario's markdown
# table, one row per tool. BASE is a row name, "peer" (the fastest peer),
# or "ideal:RATE"; a row's own baseline (BASE= at measure) wins over it.
# MODE: rate (the ratio is rate ÷ baseline rate), time (wall ÷ baseline
# wall) or rss (peak RSS ÷ baseline's). UNIT: urls, or mib:SIZE (MiB/s).
table() {
  local scen=$1 title=$2 base=$3 mode=${4:-rate} unit=${5:-urls} label=${6:-}
  {
    echo "### $title"
    echo
    awk -F'\t' -v sc="$scen" -v base="$base" -v mode="$mode" -v unit="$unit" -v label="$label" '
      function sort(a, n,    i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
      function median(list,    a, n, i) { n = split(list, a, " "); if (n == 0) return 0; for (i = 1; i <= n; i++) a[i] += 0; sort(a, n)
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      function lo(list,    a, n, i) { n = split(list, a, " "); for (i = 1; i <= n; i++) a[i] += 0; sort(a, n); return a[1] }
      function hi(list,    a, n, i) { n = split(list, a, " "); for (i = 1; i <= n; i++) a[i] += 0; sort(a, n); return a[n] }
      function group(x,    s, r) { s = sprintf("%.0f", x); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }; return s r }
      function secs(x) { return x < 10 ? sprintf("%.2f", x) : sprintf("%.1f", x) }
      function ratio(name,    b) {
        b = rowbase[name] != "-" ? rowbase[name] : bname
        if (b == "ideal") return rate[name] / ideal
        if (!(b in good) || !good[b] || !good[name]) return -1
        if (mode == "time") return wall[name] / wall[b]
        if (mode == "rss") return rss[name] / rss[b]
        return rate[name] / rate[b]
      }
      $1 == sc {
        name = $3
        if (!(name in runs)) { order[++k] = name; kind[name] = $2; rowbase[name] = $10 }
        runs[name]++
        if (($6 + 0) > rss[name] + 0) rss[name] = $6 + 0
        if ($8 == 1) { good[name]++; walls[name] = walls[name] " " $5; rates[name] = rates[name] " " ($4 / $5); cpus[name] = cpus[name] " " $7; note[name] = $9 }
        else { bad[name]++; if (why[name] == "") why[name] = $9 }
      }
      END {
        for (i = 1; i <= k; i++) { name = order[i]; if (good[name]) { wall[name] = median(walls[name]); rate[name] = median(rates[name]) } }
        if (base ~ /^ideal:/) { bname = "ideal"; ideal = substr(base, 7) + 0; head = "vs ideal (" group(ideal) " URLs/s)" }
        else if (base == "peer") {
          for (i = 1; i <= k; i++) { name = order[i]; if (kind[name] == "peer" && good[name] && (bname == "" || rate[name] > rate[bname])) bname = name }
          head = "speed vs fastest peer (" bname ")"
        } else { bname = base; head = (mode == "time" ? "wall ÷ " : mode == "rss" ? "RSS ÷ " : "speed vs ") base }
        if (label != "") head = label
        rateh = unit ~ /^mib:/ ? "MiB/s" : "URLs/s"; size = unit ~ /^mib:/ ? substr(unit, 5) + 0 : 0
        print "| tool | runs | median wall (min–max) | " rateh " | peak RSS | CPU s | " head " | check |"
        print "|---|---:|---:|---:|---:|---:|---:|---|"
        for (i = 1; i <= k; i++) {
          name = order[i]
          chk = bad[name] ? "**FAILED " bad[name] "/" runs[name] "**: " why[name] : note[name]
          if (!good[name]) { printf "| %s | %d | – | – | %.1f MiB | – | – | %s |\n", name, runs[name], rss[name] / 1024, chk; continue }
          r = ratio(name)
          printf "| %s | %d | %s s (%s–%s) | %s | %.1f MiB | %.2f | %s | %s |\n", name, runs[name], secs(wall[name]),
            secs(lo(walls[name])), secs(hi(walls[name])), size ? group(rate[name] * size) : group(rate[name]),
            rss[name] / 1024, median(cpus[name]), r < 0 ? "–" : sprintf("%.2f", r), chk
        }
      }' "$TMP/rows"
    echo
    echo "<details><summary>commands ($TMP is the run's temporary directory)</summary>"
    echo
    awk -F'\t' -v sc="$scen" '$1 == sc { printf "- %s: `%s`\n", $2, $3 }' "$TMP/cmds"
    echo
    echo "</details>"
    echo
  } >> "$RESULTS"
}
note() { printf '%s\n\n' "$*" >> "$RESULTS"; }

# Lists: urls FILE N PREFIX: PREFIX0 ... PREFIX(N-1), one a line.
urls() { awk -v n="$2" -v p="$3" 'BEGIN { for (i = 0; i < n; i++) print p i }' > "$1"; }
# curl_config LIST OUTDIR: a curl -K file of url/output pairs, every output
# /dev/null when OUTDIR is /dev/null, else OUTDIR/0, OUTDIR/1, ...
curl_config() {
  awk -v d="$2" '{ printf "url = \"%s\"\noutput = \"%s\"\n", $0, (d == "/dev/null" ? d : d "/" NR - 1) }' "$1"
}

# --- header -----------------------------------------------------------------

nginx_version=$(nginx -v 2>&1 | sed 's/.*nginx\///')
{
  echo "## trawl benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Servers and clients on loopback addresses, sharing the CPUs. Temporary files (and L's downloads) on $(df --output=fstype "$TMP" | tail -1) under $(dirname "$TMP")."
  echo "Tools: $("$TRAWL" version | head -1); $(curl --version | head -1 | cut -d' ' -f1-2); $(wget2 --version | head -1 | cut -d' ' -f1-3); $(aria2c --version | head -1); wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2); nginx $nginx_version; $(go version | cut -d' ' -f3); fasthttp $(awk '$1 == "require" && $2 ~ /fasthttp/ { print $3 }' bench/ref/go.mod)."
  echo
  echo "Each row: its runs; median wall time (min–max over the runs); the rate at the median; peak RSS (largest of the runs; for xargs, its largest single process); median CPU seconds (user+sys, children included); the ratio against the scenario's baseline; what the check of each run found, and the connections the run opened (counted by the server: nginx's stub_status, bench/server's /conns, all hosts together in H)."
  echo
} > "$RESULTS"

# --- S: many small pages from nginx -------------------------------------------

if want S; then
  nginx_server
  N=${S_N:-20000} C=${S_C:-32}
  echo "S: $N × 1 KiB from nginx, $C connections"
  urls "$TMP/s.txt" "$N" "http://127.0.0.1:$NG_HTTP/page/"
  curl_config "$TMP/s.txt" /dev/null > "$TMP/s.curl"
  s_tool() {
    case $1 in
      0) measure S trawl "trawl, input order" "$N" "records_are $TMP/s.jsonl $N" \
        "$TRAWL" -q -c "$C" --per-host 0 -o "$TMP/s.jsonl" "$TMP/s.txt" ;;
      1) measure S trawl "trawl --unordered" "$N" "records_are $TMP/s.jsonl $N" \
        "$TRAWL" -q -c "$C" --per-host 0 --unordered -o "$TMP/s.jsonl" "$TMP/s.txt" ;;
      2) measure S peer "curl --parallel --parallel-max $C" "$N" "codes_are $N" \
        curl -s --parallel --parallel-max "$C" -w '%{http_code}\n' -K "$TMP/s.curl" ;;
      3) measure S peer "wget2 --max-threads=$C" "$N" "echo exit 0" \
        wget2 -q --max-threads="$C" -i "$TMP/s.txt" -O /dev/null ;;
      # -f --fail-early: a curl process exits non-zero at its first failed
      # URL (else only its last URL decides), and xargs then exits 123.
      # (Counting -w lines does not work here: 32 processes write their
      # codes to one unbuffered stderr a byte at a time, interleaved.)
      4) measure S peer "xargs -P $C -n 50 curl" "$N" "echo exit 0 \(curl -f --fail-early\)" \
        sh -c 'xargs -P "$1" -n 50 curl -s -f --fail-early < "$2" > /dev/null' xargs "$C" "$TMP/s.txt" ;;
      5) measure S ref "ref: net/http, $C workers" "$N" "count_is $N" "$NETHTTP" -c "$C" "$TMP/s.txt" ;;
      6) measure S ref "ref: fasthttp, $C workers" "$N" "count_is $N" "$FASTHTTP" -c "$C" "$TMP/s.txt" ;;
      7) measure_wrk S "wrk -t2 -c$C -d${WRK_SECS}s, one URL (ceiling)" "http://127.0.0.1:$NG_HTTP/page/1" "$C" ;;
    esac
  }
  COUNT_CONNS=nginx
  rounds "${S_ROUNDS:-$((ROUNDS + 2))}" 8 s_tool
  COUNT_CONNS=
  table S "S: $N × 1 KiB from nginx (1 worker), $C connections" peer
  note "trawl with --per-host 0 (its default of 8 per host is a politeness cap the others do not have). wrk fetches one URL for ${WRK_SECS} s: the server's ceiling, not a fetcher."
fi

# --- L: large bodies to disk ----------------------------------------------------

# large SCEN N C URLBASE TOOL: one run of TOOL saving N bodies of L_MIB MiB
# from URLBASE0 ... into a fresh directory, timed until synced.
large() {
  local scen=$1 n=$2 c=$3 list=$4 tool=$5 tls=${6:-}
  local d=$TMP/large/$tool size=$((L_MIB << 20)) k=() wk=() ins=() rins=()
  [ -n "$tls" ] && { k=(-k); wk=(--no-check-certificate); ins=(--insecure); rins=(-insecure); }
  rm -rf "$d"; mkdir -p "$d"
  sync
  local check="files_are $d $n $size"
  case $tool in
    trawl)
      measure "$scen" trawl "trawl ${ins[*]}${tls:+ }--output-dir" "$n" "$check && records_are $TMP/large.jsonl $n $tls" \
        "${SYNCED[@]}" "$TRAWL" -q -c "$c" --per-host 0 "${ins[@]}" --output-dir "$d" -o "$TMP/large.jsonl" "$list" ;;
    wget2) measure "$scen" peer "wget2 ${wk[*]}${tls:+ }--max-threads=$c" "$n" "$check" \
      "${SYNCED[@]}" wget2 -q "${wk[@]}" --max-threads="$c" -i "$list" -P "$d" ;;
    curl)
      curl_config "$list" "$d" > "$TMP/large.curl"
      local v=1.1; [ -n "$tls" ] && v=2
      measure "$scen" peer "curl ${k[*]}${tls:+ }--parallel --parallel-max $c" "$n" "$check && codes_are $n $v" \
        "${SYNCED[@]}" curl -s "${k[@]}" --parallel --parallel-max "$c" -w '%{http_code} %{http_version}\n' -K "$TMP/large.curl" ;;
    xargs)
      awk -v d="$d" '{ print "-o", d "/" NR - 1, $0 }' "$list" > "$TMP/large.pairs"
      measure "$scen" peer "xargs -P $c -n 3 curl -o FILE URL" "$n" "$check" \
        "${SYNCED[@]}" sh -c 'xargs -P "$1" -n 3 curl -s -f --fail-early < "$2"' xargs "$c" "$TMP/large.pairs" ;;
    aria2c) measure "$scen" peer "aria2c -j $c" "$n" "$check" \
      "${SYNCED[@]}" aria2c -q -j "$c" -i "$list" -d "$d" --allow-overwrite=true ;;
    ref)
      measure "$scen" ref "ref: net/http, 256 KiB writes" "$n" "$check" \
        "${SYNCED[@]}" "$NETHTTP" -c "$c" "${rins[@]}" -dir "$d" "$list" ;;
  esac
  rm -rf "$d"
}

if want L; then
  nginx_server
  N=${L_N:-20} C=${L_C:-4}
  echo "L: $N × $L_MIB MiB from nginx to disk, $C connections"
  urls "$TMP/l.txt" "$N" "http://127.0.0.1:$NG_HTTP/big/"
  L_TOOLS=(trawl wget2 xargs curl aria2c ref)
  l_tool() { RATE_MIB=$L_MIB large L "$N" "$C" "$TMP/l.txt" "${L_TOOLS[$1]}"; }
  COUNT_CONNS=nginx
  rounds "${L_ROUNDS:-$ROUNDS}" ${#L_TOOLS[@]} l_tool
  COUNT_CONNS=
  table L "L: $N × $L_MIB MiB from nginx to disk, $C connections, timed until synced" peer rate "mib:$L_MIB"
  note "Each command runs as sh -c 'TOOL ...; sync', after a sync of its own, into a fresh directory removed afterwards. The kernel's writeback threads are not in the CPU column."
fi

# --- H: many hosts, each slow -------------------------------------------------------

if want H; then
  N=${H_N:-60000} C=${H_C:-1000} HOSTS=${H_HOSTS:-200} DELAY=${H_DELAY_MS:-50}
  IDEAL=$(awk -v c="$C" -v d="$DELAY" 'BEGIN { printf "%.0f", c * 1000 / d }')
  echo "H: $N × 1 KiB over $HOSTS hosts answering after $DELAY ms, $C in flight (ideal $IDEAL URLs/s)"
  "$OUT/server" -hosts "$HOSTS" -delay "${DELAY}ms" -addr-file "$TMP/h.addr" &
  PIDS+=($!)
  wait_file $! "$TMP/h.addr"
  # URL i goes to host i mod HOSTS: every host gets the same share, spread
  # over the whole list.
  awk -v n="$N" 'NR == FNR { h[k++] = $1; next } END { for (i = 0; i < n; i++) print "http://" h[i % k] "/page/" i }' "$TMP/h.addr" /dev/null > "$TMP/h.txt"
  curl_config "$TMP/h.txt" /dev/null > "$TMP/h.curl"
  h_tool() {
    case $1 in
      0) measure H trawl "trawl -c $C, input order" "$N" "records_are $TMP/h.jsonl $N" \
        "$TRAWL" -q -c "$C" -o "$TMP/h.jsonl" "$TMP/h.txt" ;;
      1) measure H trawl "trawl -c $C --unordered" "$N" "records_are $TMP/h.jsonl $N" \
        "$TRAWL" -q -c "$C" --unordered -o "$TMP/h.jsonl" "$TMP/h.txt" ;;
      2) measure H trawl "trawl -c $C -x title, input order" "$N" "records_are $TMP/h.jsonl $N '' title" \
        "$TRAWL" -q -c "$C" -x title -o "$TMP/h.jsonl" "$TMP/h.txt" ;;
      3) measure H trawl "trawl -c $C --unordered -x title" "$N" "records_are $TMP/h.jsonl $N '' title" \
        "$TRAWL" -q -c "$C" --unordered -x title -o "$TMP/h.jsonl" "$TMP/h.txt" ;;
      4) measure H peer "curl --parallel --parallel-max $C" "$N" "codes_are $N" \
        curl -s --parallel --parallel-max "$C" -w '%{http_code}\n' -K "$TMP/h.curl" ;;
      5) measure H ref "ref: net/http, $C workers" "$N" "count_is $N" "$NETHTTP" -c "$C" "$TMP/h.txt" ;;
      6) measure H ref "ref: fasthttp, $C workers" "$N" "count_is $N" "$FASTHTTP" -c "$C" "$TMP/h.txt" ;;
    esac
  }
  COUNT_CONNS=go:$(head -1 "$TMP/h.addr")
  rounds "${H_ROUNDS:-$ROUNDS}" 7 h_tool
  COUNT_CONNS=
  table H "H: $N × 1 KiB over $HOSTS hosts (127.0.1.x, bench/server) answering after $DELAY ms, $C in flight" "ideal:$IDEAL"
  note "The ideal is $C in flight ÷ $DELAY ms. trawl runs with its defaults but -c (per host at most 8, and $C ÷ $HOSTS = $((C / HOSTS)) in flight per host on average)."
fi

# --- T: a slow tail -------------------------------------------------------------------

if want T; then
  go_server
  N=${T_N:-5000} C=${T_C:-32}
  echo "T: $N URLs, 1% taking 500 ms, $C in flight"
  urls "$TMP/t.txt" "$N" "http://$GO_ADDR/tail/"
  t_run() {
    local name=$1; shift
    measure T trawl "$name" "$N" "records_are $TMP/t.jsonl $N" "$TRAWL" -q -c "$C" --per-host 0 "$@" -o "$TMP/t.jsonl" "$TMP/t.txt"
  }
  t_tool() {
    case $1 in
      0) t_run "trawl --unordered" --unordered ;;
      1) BASE="trawl --unordered" t_run "trawl, input order" ;;
      2) BASE="trawl --unordered -x title" t_run "trawl --unordered -x title" --unordered -x title ;;
      3) BASE="trawl --unordered -x title" t_run "trawl -x title, input order" -x title ;;
      4) BASE="trawl --unordered" t_run "trawl, input order, --reorder-window 32" --reorder-window 32 ;;
    esac
  }
  COUNT_CONNS=go:$GO_ADDR
  rounds "${T_ROUNDS:-$ROUNDS}" 5 t_tool
  COUNT_CONNS=
  table T "T: $N URLs (bench/server), 1% taking 500 ms, -c $C --per-host 0" "trawl --unordered" time rate "wall ÷ completion order's"
  note "The last column is input order's wall time over the same settings' in completion order (1.00: no penalty for keeping the input order)."
fi

# --- M: memory against list length --------------------------------------------------

if want M; then
  go_server
  C=${M_C:-32} SMALL=${M_SMALL:-100000} LARGE=${M_LARGE:-1000000}
  echo "M: memory against list length ($SMALL and $LARGE URLs)"
  for n in "$SMALL" "$LARGE"; do urls "$TMP/m$n.txt" "$n" "http://$GO_ADDR/tiny/"; done
  m_tool() {
    local n order base
    n=$([ "$1" -lt 2 ] && echo "$SMALL" || echo "$LARGE")
    order=$([ $(($1 % 2)) = 0 ] && echo "input order" || echo "--unordered")
    base="trawl $order, $SMALL URLs"
    local flags=(); [ "$order" = --unordered ] && flags=(--unordered)
    BASE=$base measure M trawl "trawl $order, $n URLs" "$n" "records_are $TMP/m.jsonl $n" \
      "$TRAWL" -q -c "$C" --per-host 0 "${flags[@]}" -o "$TMP/m.jsonl" "$TMP/m$n.txt"
    rm -f "$TMP/m.jsonl"
  }
  rounds "${M_ROUNDS:-1}" 4 m_tool
  table M "M: peak memory against list length (tiny bodies from bench/server, -c $C --per-host 0)" "-" rss urls "peak RSS ÷ at $SMALL URLs"
fi

# --- HTTPS ----------------------------------------------------------------------------

if want HTTPS; then
  nginx_server
  N=${HTTPS_N:-20000} K0=${HTTPS_K0_N:-5000} LN=${HTTPS_L_N:-20} C=${HTTPS_C:-32}
  R=${HTTPS_ROUNDS:-$ROUNDS}
  COUNT_CONNS=nginx
  # tls_tool SCEN LIST N PROTO CURLVERSION I: tool I of the small-page HTTPS scenarios.
  tls_tool() {
    local scen=$1 list=$2 n=$3 proto=$4 cv=$5
    case $6 in
      0) measure "$scen" trawl "trawl, input order" "$n" "records_are $TMP/tls.jsonl $n $proto" \
        "$TRAWL" -q --insecure -c "$C" --per-host 0 -o "$TMP/tls.jsonl" "$list" ;;
      1) measure "$scen" trawl "trawl --unordered" "$n" "records_are $TMP/tls.jsonl $n $proto" \
        "$TRAWL" -q --insecure -c "$C" --per-host 0 --unordered -o "$TMP/tls.jsonl" "$list" ;;
      2) measure "$scen" peer "curl -k --parallel --parallel-max $C" "$n" "codes_are $n $cv" \
        curl -sk --parallel --parallel-max "$C" -w '%{http_code} %{http_version}\n' -K "$list.curl" ;;
      3) measure "$scen" peer "wget2 --no-check-certificate --max-threads=$C" "$n" "echo exit 0, ALPN ${ALPN:-?}" \
        wget2 -q --no-check-certificate --max-threads="$C" -i "$list" -O /dev/null ;;
      4) measure "$scen" ref "ref: net/http, $C workers" "$n" "count_is $n" "$NETHTTP" -insecure -c "$C" "$list" ;;
      5) measure "$scen" ref "ref: fasthttp, $C workers" "$n" "count_is $n" "$FASTHTTP" -insecure -c "$C" "$list" ;;
      6) measure_wrk "$scen" "wrk -t2 -c$C -d${WRK_SECS}s, one URL (ceiling)" "$(head -1 "$list")" "$C" ;;
    esac
  }
  # wget2_alpn LIST: what wget2 negotiates, from its TLS statistics on the
  # first 64 URLs (an untimed run: the statistics are not in the timed one).
  wget2_alpn() {
    head -64 "$1" > "$TMP/probe.txt"
    wget2 -q --no-check-certificate --max-threads="$C" -i "$TMP/probe.txt" -O /dev/null --stats-tls="csv:$TMP/probe.csv" >/dev/null 2>&1 || true
    awk -F, 'NR > 1 { n[$6]++; if ($5 == 1) res++; c++ } END { for (a in n) printf "%s%s×%d", (s++ ? "+" : ""), a, n[a]; if (res) printf " (%d resumed)", res }' "$TMP/probe.csv" 2>/dev/null || echo "?"
  }

  echo "HTTPS h2: $N × 1 KiB over HTTP/2, $C in flight"
  urls "$TMP/h2.txt" "$N" "https://127.0.0.1:$NG_H2/page/"
  curl_config "$TMP/h2.txt" /dev/null > "$TMP/h2.txt.curl"
  ALPN=$(wget2_alpn "$TMP/h2.txt")
  h2_tool() { tls_tool HTTPS-h2 "$TMP/h2.txt" "$N" HTTP/2.0 2 "$1"; }
  rounds "$R" 5 h2_tool
  table HTTPS-h2 "HTTPS h2: $N × 1 KiB from nginx over HTTP/2 (TLS), $C in flight" peer
  note "trawl's check: every record says \"proto\":\"HTTP/2.0\"; curl's: every -w line says 200 and HTTP version 2; wget2's ALPN is from an untimed run on 64 URLs with --stats-tls (connections per protocol). fasthttp and wrk speak HTTP/1.1 only and are in the next table."

  echo "HTTPS h1: $N × 1 KiB over HTTP/1.1 + TLS, $C in flight"
  urls "$TMP/h1.txt" "$N" "https://127.0.0.1:$NG_H1/page/"
  curl_config "$TMP/h1.txt" /dev/null > "$TMP/h1.txt.curl"
  ALPN=$(wget2_alpn "$TMP/h1.txt")
  h1_tool() { tls_tool HTTPS-h1 "$TMP/h1.txt" "$N" HTTP/1.1 1.1 "$1"; }
  rounds "$R" 7 h1_tool
  table HTTPS-h1 "HTTPS h1: $N × 1 KiB from nginx over HTTP/1.1 + TLS (no h2 offered), $C connections" peer

  echo "HTTPS k0: $K0 × 1 KiB, a new TLS connection per URL (keepalive_timeout 0), $C in flight"
  urls "$TMP/k0.txt" "$K0" "https://127.0.0.1:$NG_K0/page/"
  curl_config "$TMP/k0.txt" /dev/null > "$TMP/k0.txt.curl"
  ALPN=$(wget2_alpn "$TMP/k0.txt")
  k0_tool() { tls_tool HTTPS-k0 "$TMP/k0.txt" "$K0" HTTP/1.1 1.1 "$1"; }
  rounds "$R" 5 k0_tool
  table HTTPS-k0 "HTTPS k0: $K0 × 1 KiB, nginx with keepalive_timeout 0 (a TLS handshake per URL), $C in flight" peer
  note "nginx leaves TLS session tickets on (its default), so a client that keeps tickets may resume instead of a full handshake; wget2's probe counts resumed connections. Certificate: ${CERT_KEY:-ec} (CERT_KEY=rsa for RSA 2048)."

  echo "HTTPS L: $LN × $L_MIB MiB over HTTP/2 to disk, 4 in flight"
  urls "$TMP/hl.txt" "$LN" "https://127.0.0.1:$NG_H2/big/"
  HL_TOOLS=(trawl wget2 curl ref)
  hl_tool() { RATE_MIB=$L_MIB large HTTPS-L "$LN" 4 "$TMP/hl.txt" "${HL_TOOLS[$1]}" HTTP/2.0; }
  rounds "$R" ${#HL_TOOLS[@]} hl_tool
  COUNT_CONNS=
  table HTTPS-L "HTTPS L: $LN × $L_MIB MiB from nginx over HTTP/2 to disk, 4 in flight, timed until synced" peer rate "mib:$L_MIB"
fi

echo
cat "$RESULTS"
