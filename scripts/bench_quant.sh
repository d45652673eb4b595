#!/bin/sh
# Builds and runs the quantized-kernel timing (scripts/bench_quant.c) with the same flags as the
# Kernels target. Usage: scripts/bench_quant.sh [int4 group size] [only one kernel: int8|int4|fp16]
set -e
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/sankshep_bench_quant
clang -O3 -fno-math-errno -ISources/Kernels/include scripts/bench_quant.c Sources/Kernels/gemm.c Sources/Kernels/gemm_avx512.c Sources/Kernels/gemm_avx2.c Sources/Kernels/cpu.c \
    Sources/Kernels/parallel.c Sources/Kernels/quant/*.c -lopenblas -lpthread -lm -o "$out"
exec "$out" "$@"
