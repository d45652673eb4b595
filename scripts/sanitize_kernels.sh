#!/usr/bin/env bash
# The C kernels' tests (Tests/SankshepTests/Kernels) once under AddressSanitizer and
# UndefinedBehaviorSanitizer: Sources/Kernels compiled by clang with -fsanitize=address,undefined
# (any undefined behaviour aborts), the Swift tests by swiftc with -sanitize=address, linked into
# one test executable outside SwiftPM's build. Exits non-zero on a failed test or a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build/sanitize
mkdir -p "$OUT/objects" "$OUT/module"
CC=${CC:-clang}
printf 'module Kernels {\n    umbrella "%s/Sources/Kernels/include"\n    export *\n}\n' "$PWD" > "$OUT/module/module.modulemap"
objects=()
for source in Sources/Kernels/*.c Sources/Kernels/quant/*.c; do
    object="$OUT/objects/$(echo "$source" | tr / _).o"
    "$CC" -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1 \
        -fno-math-errno -I Sources/Kernels/include -I Sources/Kernels -c "$source" -o "$object"
    objects+=("$object")
done
swiftc -parse-as-library -sanitize=address -g -Onone -module-name KernelSanitizerTests -I "$OUT/module" \
    Tests/SankshepTests/Kernels/*.swift Tests/SankshepTests/Support/SeededGenerator.swift Tests/Sanitize/KernelTestsMain.swift \
    "${objects[@]}" -lopenblas -lm -o "$OUT/kernel-tests" 2>&1 | grep -v "warning: Cannot export local symbol" || true
test -x "$OUT/kernel-tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$OUT/kernel-tests"
