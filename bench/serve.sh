#!/usr/bin/env bash
# bootc serve against nginx serving the same tree, in the same run: requests
# per second for a small script (boot.ipxe) and MB/s for a large image, each
# printed as bootc/nginx. Loopback only, bounded in time.
#
#   bench/serve.sh                      # 3 rounds of 10 s per measurement
#   ROUNDS=5 SECONDS_EACH=20 IMAGE_MB=512 bench/serve.sh
#
# Needs: wrk, nginx (Debian: apt-get install wrk nginx-light), cargo.
# nginx runs as Debian ships it in spirit: worker_processes auto, sendfile
# on, an access log (bootc serve logs every request too, to a file here).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
CONNS=${CONNS:-64}            # concurrent connections for the small script
STREAMS=${STREAMS:-4}         # concurrent downloads of the large image
IMAGE_MB=${IMAGE_MB:-256}

for p in wrk nginx cargo; do
  command -v "$p" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "$p" >/dev/null ||
    { echo "bench/serve.sh needs $p (apt-get install ${p/nginx/nginx-light})" >&2; exit 2; }
done
NGINX=$(PATH="$PATH:/usr/sbin:/sbin" command -v nginx)

cargo build --release --quiet
BOOTC="${CARGO_TARGET_DIR:-target}/release/bootc"

work=$(mktemp -d /tmp/bootc-bench-serve.XXXXXX)
chmod 755 "$work"  # nginx workers may run as nobody
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The site: the test fixture with a large kernel image.
cp -r tests/fixtures/basic "$work/site"
head -c "$((IMAGE_MB << 20))" /dev/urandom >"$work/site/artifacts/vmlinuz"

BPORT=$(free_port)
"$BOOTC" serve "$work/site" --bind "127.0.0.1:$BPORT" >"$work/bootc.log" 2>"$work/bootc.err" &
pids+=($!)
for _ in $(seq 600); do grep -q '^serving ' "$work/bootc.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^serving ' "$work/bootc.log" || { cat "$work/bootc.err" >&2; exit 1; }
tree="$work/site/.bootc-serve/tree/http"
image=$(cd "$tree" && ls images/*/vmlinuz)

NPORT=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    access_log $work/nginx/access.log;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server { listen 127.0.0.1:$NPORT; root $tree; }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$NPORT") 2>/dev/null && break; sleep 0.1; done

# wrk output -> requests/s, or MB/s of transfer
rps() { awk '/^Requests\/sec:/ { print $2 }'; }
mbps() {
  awk '/^Transfer\/sec:/ {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
    m = (u == "GB") ? 1024 : (u == "MB") ? 1 : (u == "KB") ? 1/1024 : 1/1048576
    printf "%.1f\n", v * m * 1.048576 }'
}
check() {
  if grep -qE 'Non-2xx|Socket errors' <<<"$1"; then echo "errors in a run:" >&2; echo "$1" >&2; exit 1; fi
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A small big
for r in $(seq "$ROUNDS"); do
  for s in bootc nginx; do
    port=$BPORT; [ "$s" = nginx ] && port=$NPORT
    out=$(wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" "http://127.0.0.1:$port/boot.ipxe"); check "$out"
    small[$s]+="$(rps <<<"$out") "
    out=$(wrk -t2 -c"$STREAMS" -d"${SECONDS_EACH}s" --timeout 60s "http://127.0.0.1:$port/$image"); check "$out"
    big[$s]+="$(mbps <<<"$out") "
  done
done

sr_b=$(tr ' ' '\n' <<<"${small[bootc]}" | grep . | median)
sr_n=$(tr ' ' '\n' <<<"${small[nginx]}" | grep . | median)
bg_b=$(tr ' ' '\n' <<<"${big[bootc]}" | grep . | median)
bg_n=$(tr ' ' '\n' <<<"${big[nginx]}" | grep . | median)

echo "bootc serve vs nginx, same tree, loopback, $(nproc) cores, median of $ROUNDS rounds of ${SECONDS_EACH}s"
printf '%-34s %12s %12s %8s\n' "" "bootc serve" "nginx" "ratio"
printf '%-34s %12.0f %12.0f %8.2f\n' "boot.ipxe, requests/s (c=$CONNS)" "$sr_b" "$sr_n" "$(awk "BEGIN { print $sr_b / $sr_n }")"
printf '%-34s %12.0f %12.0f %8.2f\n' "${IMAGE_MB} MiB image, MB/s (c=$STREAMS)" "$bg_b" "$bg_n" "$(awk "BEGIN { print $bg_b / $bg_n }")"
echo "all rounds: boot.ipxe bootc [${small[bootc]% }] nginx [${small[nginx]% }]; image bootc [${big[bootc]% }] nginx [${big[nginx]% }]"
