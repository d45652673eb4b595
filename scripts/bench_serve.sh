#!/usr/bin/env bash
# Load test of `sankshep serve` against a FastAPI + uvicorn + ONNX Runtime (dynamic INT8) peer serving
# the same model, with wrk on loopback: requests/s and p50/p99 latency at each connection count, and
# the ratios sankshep / peer, for every model folder given.
#
#   apt-get install -y wrk; swift build -c release; scripts/setup_python.sh; venv/bin/pip install fastapi uvicorn
#   scripts/bench_serve.sh [--duration 10s] [--connections "1 8 32 128"] MODEL_DIR...
#
# Both services get the same 2 compute threads; sankshep uses its defaults (--max-batch 64, --max-wait-ms 5).
# SANKSHEP (default .build/release/sankshep) and PYTHON (default venv/bin/python, else .venv/bin/python) name the programs.
set -euo pipefail

duration=10s
connections="1 8 32 128"
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(outputs/final_quantized_pruned_student)

root=$(cd "$(dirname "$0")/.." && pwd)
sankshep=${SANKSHEP:-$root/.build/release/sankshep}
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x "$root/venv/bin/python" ]; then python=$root/venv/bin/python; else python=$root/.venv/bin/python; fi
fi
command -v curl >/dev/null || { echo "bench_serve.sh: curl is not installed" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_serve.sh: wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
[ -x "$sankshep" ] || { echo "bench_serve.sh: no sankshep binary at $sankshep (swift build -c release)" >&2; exit 1; }
"$python" -c "import fastapi, uvicorn, onnxruntime, torch, transformers" 2>/dev/null \
    || { echo "bench_serve.sh: $python lacks fastapi, uvicorn, onnxruntime, torch or transformers" >&2; exit 1; }

sankshep_port=18080
peer_port=18181
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_healthy() {  # port, pid
    for _ in $(seq 1 600); do
        kill -0 "$2" 2>/dev/null || { echo "bench_serve.sh: the service on port $1 exited" >&2; exit 1; }
        curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "bench_serve.sh: the service on port $1 never became healthy" >&2; exit 1
}

# wrk's summary -> "requests/s p50_ms p99_ms non2xx"
measure() {  # port, connections
    local threads=$(( $2 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$2" -d"$duration" --latency -s "$root/scripts/bench_serve.lua" "http://127.0.0.1:$1/v1/classify" | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 } /Non-2xx/ { bad = $NF }
        /Socket errors/ { gsub(",", ""); timeouts = $NF }
        END { printf "%.1f %.2f %.2f %d %d\n", rps, p50, p99, bad + 0, timeouts + 0 }'
}

echo "# $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk $duration per row"
printf '%-40s %6s %12s %9s %9s %12s %9s %9s %8s %8s\n' model conns sankshep_rps p50_ms p99_ms peer_rps p50_ms p99_ms rps_x p99_x
for model in "${models[@]}"; do
    "$sankshep" serve --model "$model" --port $sankshep_port --threads 2 2>/dev/null &
    pids+=($!)
    wait_healthy $sankshep_port $!
    OMP_NUM_THREADS=2 "$python" "$root/scripts/serve_peer.py" --model "$model" --port $peer_port --threads 2 &
    pids+=($!)
    wait_healthy $peer_port $!
    for c in $connections; do
        read -r s_rps s_p50 s_p99 s_bad s_timeouts < <(measure $sankshep_port "$c")
        read -r p_rps p_p50 p_p99 p_bad p_timeouts < <(measure $peer_port "$c")
        [ "$s_bad" -eq 0 ] && [ "$p_bad" -eq 0 ] || echo "# $c connections: non-2xx answers: sankshep $s_bad, peer $p_bad" >&2
        # wrk leaves requests over its 2 s timeout out of the latencies: say so when it happened.
        [ "$s_timeouts" -eq 0 ] && [ "$p_timeouts" -eq 0 ] || echo "# $c connections: wrk timeouts (not in the latencies): sankshep $s_timeouts, peer $p_timeouts" >&2
        printf '%-40s %6s %12s %9s %9s %12s %9s %9s %8s %8s\n' "$(basename "$model")" "$c" "$s_rps" "$s_p50" "$s_p99" \
            "$p_rps" "$p_p50" "$p_p99" "$(awk -v a="$s_rps" -v b="$p_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
            "$(awk -v a="$s_p99" -v b="$p_p99" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    done
    cleanup
    pids=()
done
