#!/usr/bin/env bash
# How long `bootc serve` takes to serve an edit of one machine file: the
# first machine of a site made by the build bench's generator gets a new
# kernel argument, and its script is polled over loopback until the new
# argument appears. Prints each edit's latency and the rebuild's own log.
#
#   bench/serve-edit.sh SITE                # 5 edits
#   EDITS=10 BOOTC=path/to/bootc bench/serve-edit.sh SITE
#
# SITE: a site the build bench generated (BOOTC_BENCH_DIR=D keeps
# D/fleet-N/site), whose machines/row001/rack01.toml starts with machine
# 52:54:00:00:00:00. The script adds `bootc.x=N` to that machine's
# kernel-args and leaves it there. Needs curl, python3.
set -euo pipefail
site=${1:?usage: bench/serve-edit.sh SITE}
EDITS=${EDITS:-5}
BOOTC=${BOOTC:-$(dirname "$0")/../target/release/bootc}
file="$site/machines/row001/rack01.toml"
script=machines/52-54-00-00-00-00.ipxe

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/bootc-serve-edit.XXXXXX)
"$BOOTC" serve "$site" --bind "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$log" "$KEEP_LOG"; rm -f "$log"' EXIT

until grep -q 'built site' "$log"; do
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.2
done
grep 'built site' "$log" | tail -1

# The first machine's kernel-args, with bootc.x=N set (added if missing).
if ! grep -q 'bootc\.x=' "$file"; then
  python3 - "$file" <<'EOF'
import re, sys
p = sys.argv[1]; t = open(p).read()
t = re.sub(r'(\[\[machine\]\][^\[]*?\n)', lambda m: m.group(1) + 'kernel-args = ["bootc.x=0"]\n', t, count=1)
open(p, "w").write(t)
EOF
  sleep 5
fi
n=$(grep -o 'bootc\.x=[0-9]*' "$file" | head -1 | cut -d= -f2)
for _ in $(seq "$EDITS"); do
  n=$((n + 1))
  builds=$(grep -c 'built site' "$log" || true)
  t0=$(date +%s.%N)
  sed -i "0,/bootc\.x=[0-9]*/s//bootc.x=$n/" "$file"
  until curl -sf "http://127.0.0.1:$port/$script" | grep -q "bootc.x=$n\b"; do
    sleep 0.02
  done
  t1=$(date +%s.%N)
  printf 'edit %d served in %.2f s\n' "$n" "$(echo "$t1 - $t0" | bc)"
  # The tree is written after it is served: the next edit waits for it.
  until [ "$(grep -c 'built site' "$log" || true)" -gt "$builds" ]; do sleep 0.1; done
  grep 'built site' "$log" | tail -1
done
