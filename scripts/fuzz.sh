#!/usr/bin/env bash
# libFuzzer harnesses of Sankshep's parsers (Tests/Fuzz/FuzzTargets.swift).
#
#   scripts/fuzz.sh build              compile the harness binary (.build/fuzz/sankshep-fuzz)
#   scripts/fuzz.sh run TARGET SECONDS fuzz one target for SECONDS; new inputs go to .build/fuzz/corpus/TARGET
#   scripts/fuzz.sh all SECONDS        every target in turn, SECONDS each
#   scripts/fuzz.sh seeds              regenerate the manifest seeds (the others: scripts/fixtures/make_fuzz_seeds.py)
#
# The harness is the Host target's own sources compiled once more by swiftc with
# -sanitize=fuzzer,address, with the compiler flags SwiftPM used for Host (read from .build/debug.yaml)
# and linked against the dependencies' objects from the debug build, so SwiftPM's build is untouched.
# Leak detection is off: Foundation's own reads (Data(contentsOf:), FileManager paths) report small
# leaks on every input. Each run prints one line `fuzz TARGET: N executions in S s, no crash`; a crash leaves the input in
# .build/fuzz/crashes/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
OUT=.build/fuzz
BIN=${FUZZ_BIN:-$OUT/sankshep-fuzz}
TARGETS="safetensors torch-zip torch-legacy config vocab tokenizer-json sankshep-json manifest csv recipe"
DEBUG=$($SWIFT build --show-bin-path)

build() {
    # The debug build provides the dependencies' modules and objects and the built-in plugins.
    $SWIFT build --product sankshep >/dev/null
    for plugin in SankshepMagnitude SankshepWanda SankshepGradual SankshepQuant; do $SWIFT build --product $plugin >/dev/null; done
    mkdir -p "$OUT"
    python3 - "$DEBUG" "$OUT" <<'EOF'
import json, os, sys
debug, out = sys.argv[1], sys.argv[2]
compile_args = link_args = None
# SwiftPM keeps its build plan beside the triple's folder: .build/debug.yaml.
plans = [os.path.join(os.path.dirname(debug), "debug.yaml"), os.path.join(os.path.dirname(os.path.dirname(debug)), "debug.yaml")]
for line in open(next(p for p in plans if os.path.exists(p))):
    line = line.strip()
    if not line.startswith("args:"):
        continue
    args = json.loads(line[len("args:"):])
    if "-module-name" in args and args[args.index("-module-name") + 1] == "Host" and "-c" in args:
        compile_args = args
    if "-o" in args and args[args.index("-o") + 1] == os.path.join(debug, "sankshep"):
        link_args = args
if compile_args is None or link_args is None:
    sys.exit("no Host compile or sankshep link command in debug.yaml: run swift build first")
# Host's search paths, module maps, defines and language mode; SwiftPM's outputs and incremental flags dropped.
keep, skip_next = [], False
take = {"-I", "-Xcc", "-module-cache-path", "-swift-version", "-package-name", "-Xfrontend"}
i = 1
while i < len(compile_args):
    a = compile_args[i]
    if a in take:
        keep += [a, compile_args[i + 1]]; i += 2; continue
    if a.startswith("-D"):
        keep.append(a)
    i += 1
# The executable's object list is a response file (paths with spaces quoted): kept line by line, Host's own dropped.
objects = [line for line in open(os.path.join(debug, "sankshep.product", "Objects.LinkFileList")).read().splitlines()
           if line.strip() and "/Host.build/" not in line]
libraries = []
for index, a in enumerate(link_args):
    if a == "-L":
        libraries += [a, link_args[index + 1]]
    elif a.startswith("-l") or a.startswith("-L"):
        libraries.append(a)
open(os.path.join(out, "flags"), "w").write("\n".join(keep) + "\n")
open(os.path.join(out, "objects"), "w").write("\n".join(objects + libraries) + "\n")
EOF
    # Host's sources as SwiftPM lists them (its entry point renamed by the flags), plus the harness.
    local sources
    sources=$(tr '\n' ' ' < "$DEBUG/Host.build/sources")
    # Compiled again only when a source changed since the last object (it takes minutes).
    if [ ! -f "$OUT/harness.o" ] || [ -n "$(find Sources/Host Tests/Fuzz -name '*.swift' -newer "$OUT/harness.o" | head -1)" ]; then
        # shellcheck disable=SC2046,SC2086
        swiftc -c -wmo -parse-as-library -sanitize=fuzzer,address -Onone -g -module-name SankshepFuzz \
            $(cat "$OUT/flags") $sources Tests/Fuzz/FuzzTargets.swift -o "$OUT/harness.o"
    fi
    swiftc -sanitize=fuzzer,address "$OUT/harness.o" @"$OUT/objects" -o "$BIN" 2>&1 \
        | grep -v "warning: Cannot export local symbol" || true
    test -x "$BIN"
}

run() {
    local target=$1 seconds=$2
    local corpus=$OUT/corpus/$target
    mkdir -p "$corpus" "$OUT/crashes"
    local log=$OUT/$target.log
    # New inputs go to .build/fuzz/corpus; the committed seeds are read, never written.
    if ! ASAN_OPTIONS=detect_leaks=0 SANKSHEP_FUZZ_TARGET=$target SANKSHEP_FUZZ_PLUGINS=$DEBUG "$BIN" "$corpus" "Tests/Fuzz/corpus/$target" \
            -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 -detect_leaks=0 \
            -artifact_prefix="$OUT/crashes/$target-" -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz $target: FAILED (input in $OUT/crashes/, log $log)"
        return 1
    fi
    local executions
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz $target: $executions executions in $seconds s, no crash"
}

seeds() {
    for method in dynamic; do
        mkdir -p Tests/Fuzz/corpus/manifest
        SANKSHEP_FUZZ_TARGET=manifest SANKSHEP_FUZZ_PRINT_SEED=1 SANKSHEP_FUZZ_QUANT_METHOD=$method SANKSHEP_FUZZ_PLUGINS=$DEBUG \
            "$BIN" -detect_leaks=0 Tests/Fuzz/corpus/sankshep-json/plain.json > "Tests/Fuzz/corpus/manifest/$method.json" 2>/dev/null || true
    done
}

case ${1:-} in
    build) build ;;
    run) run "$2" "$3" ;;
    all)
        status=0
        for target in $TARGETS; do run "$target" "$2" || status=1; done
        exit $status ;;
    seeds) seeds ;;
    *) echo "usage: $0 build | run TARGET SECONDS | all SECONDS | seeds" >&2; exit 2 ;;
esac
