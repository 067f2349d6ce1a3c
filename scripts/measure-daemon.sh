#!/usr/bin/env bash
# Measures the figures reported for the daemon: binary size, start-to-ready
# time (median of N starts) and idle resident memory after 60 s of serve.
# Usage: scripts/measure-daemon.sh [runs]   (builds bin/agentd first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
make -s build >/dev/null
bin=bin/agentd
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
port=$(( 20000 + RANDOM % 20000 ))
cat > "$work/config.toml" <<CFG
[server]
listen = "127.0.0.1:$port"
[storage]
state_dir = "$work/state"
[vram]
probe = "none"
CFG
printf 'binary size: %s bytes (%s)\n' "$(stat -c %s $bin)" "$(du -h $bin | cut -f1)"

times=()
for i in $(seq "$runs"); do
    start=$(date +%s%N)
    $bin serve --config "$work/config.toml" 2>/dev/null &
    pid=$!
    until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.005; done
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
    kill -TERM $pid; wait $pid || true
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
printf 'start-to-ready: median %s ms over %s runs (all: %s)\n' "${sorted[$(( runs / 2 ))]}" "$runs" "${times[*]}"

$bin serve --config "$work/config.toml" 2>/dev/null &
pid=$!
sleep 60
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf 'idle RSS after 60 s: %s KiB (%.1f MiB)\n' "$rss" "$(echo "$rss/1024" | bc -l)"
kill -TERM $pid; wait $pid || true
