#!/usr/bin/env bash
# libFuzzer runs of every parser of outside input the package owns (issue 16): the decoding of
# the kernel's status structures, ftok's path, the demos' params.txt, the sysvipc tool's keys,
# modes, durations and kinds (Fuzz/, its own package).
#
#   Scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 s for each target
#   Scripts/fuzz.sh --merge [SECONDS]         # also fold new inputs into Fuzz/Corpus (minimised)
#
# Each target starts from its corpus in Fuzz/Corpus/<target> (kept in the repository; small),
# with the words of its format from Fuzz/Dictionaries/<target>.dict where there is one.
# New inputs go to a scratch folder, not the repository, unless --merge. A crash stops the
# target, is kept as Fuzz/Artifacts/<target>/crash-*, and fails the script: turn it into a
# regression test (Tests/SysVIPCTests/FuzzRegressionTests.swift) and a corpus entry.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"

merge=0
if [ "${1:-}" = "--merge" ]; then merge=1; shift; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-status fuzz-ftok fuzz-params fuzz-arguments)

# SwiftPM passes -sanitize=fuzzer to the link but not to the compile jobs (swift 6.3), which
# leaves the code without coverage counters and libFuzzer blind: the coverage is asked for.
flags=(--sanitize=fuzzer --sanitize=address
  -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sysvipc-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# (gold's warnings about the sanitizer runtime's local symbols are noise)
if ! swift build "${flags[@]}" >"$scratch/build.log" 2>&1; then
  grep -v "ld.gold: warning: Cannot export" "$scratch/build.log"
  exit 1
fi
bin=$(swift build "${flags[@]}" --show-bin-path)
failed=()
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
for target in "${targets[@]}"; do
  mkdir -p "Corpus/$target" "$scratch/$target" "Artifacts/$target"
  log="$scratch/$target.log"
  status=0
  dictionary=()
  [ -f "Dictionaries/$target.dict" ] && dictionary=(-dict="Dictionaries/$target.dict")
  "$bin/$target" "${dictionary[@]}" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="Artifacts/$target/" "$scratch/$target" "Corpus/$target" >"$log" 2>&1 \
    || status=$?
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  corpus=$(find "$scratch/$target" "Corpus/$target" -type f | wc -l)
  echo "fuzz: $target: ${runs:-?} executions in $seconds s, ${coverage:-no coverage}, corpus $corpus inputs, status $status"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    grep -E "invariant broken|Fatal error|ERROR: (AddressSanitizer|libFuzzer)|Test unit written" "$log" || tail -30 "$log"
  fi
  if [ "$merge" -eq 1 ]; then
    "$bin/$target" -merge=1 "Corpus/$target" "$scratch/$target" >/dev/null 2>&1 || true
  fi
  rmdir "Artifacts/$target" 2>/dev/null || true
done
rmdir Artifacts 2>/dev/null || true
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]} (inputs in Fuzz/Artifacts)"
  exit 1
fi
echo "fuzz: no crash"
