#!/usr/bin/env bash
# Run a command beside a private Ray cluster that can only talk over loopback.
#
#   bash tools/ray_loopback.sh [--cpus N] -- COMMAND ARGS...
#
# Ray listens on every interface and advertises the machine's own address even when told
# --node-ip-address 127.0.0.1, so the head, its workers and COMMAND run in a network namespace
# with only `lo` (no Ray traffic can reach another address) and a PID namespace (when the script
# ends, the kernel ends every process it started). COMMAND sees RAY_ADDRESS=127.0.0.1:26379, so
# `neuralgraph batch JOB -o OUT --ray auto` (or --ray 127.0.0.1:26379) uses the cluster.
# Needs root or user namespaces (CI runs as root), unshare (util-linux) and ip (iproute2).
set -euo pipefail
if [ "${NG_RAY_LOOPBACK:-}" != 1 ]; then
    exec env NG_RAY_LOOPBACK=1 unshare --net --pid --fork --mount-proc bash "$0" "$@"
fi
ip link set lo up
cpus=2
if [ "${1:-}" = --cpus ]; then cpus=$2; shift 2; fi
if [ "${1:-}" = -- ]; then shift; fi
tmp=$(mktemp -d /tmp/ngray.XXXXXX)  # Ray's socket paths must stay short
trap 'ray stop --force >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
export RAY_USAGE_STATS_ENABLED=0
ray start --head --port 26379 --num-cpus "$cpus" --include-dashboard false --disable-usage-stats \
    --temp-dir "$tmp" >"$tmp/start.log" 2>&1 || { cat "$tmp/start.log" >&2; exit 3; }
export RAY_ADDRESS=127.0.0.1:26379
"$@"
