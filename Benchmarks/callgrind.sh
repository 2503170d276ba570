#!/usr/bin/env bash
# User-space instructions per operation, Swift vs C, under valgrind --tool=callgrind.
#
#   Benchmarks/callgrind.sh [SCENARIO ARGS...]     (default: sem_uncontended)
#
# Each binary runs the scenario twice, with N1 and N2 iterations; (Ir(N2) - Ir(N1)) / (N2 - N1)
# is the instructions per operation with start-up, warm-up and teardown cancelled out. Callgrind
# counts only user-space instructions (the kernel's side of each syscall is not in it), which is
# what the library adds or saves. For sem_uncontended one op is an acquire + release pair.
# Needs the release build (run.py builds it, or: swift build -c release; the C binary is built
# here). Single-process scenarios only (callgrind would follow a spawned child through valgrind).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
swift_bin="$here/.build/release/ipc-bench"
c_bin="$here/.build/ipc-bench-c"
N1=${N1:-20000}
N2=${N2:-40000}
[ $# -gt 0 ] || set -- sem_uncontended
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$swift_bin" ] || { echo "callgrind.sh: build first: (cd $here && swift build -c release)" >&2; exit 2; }
mkdir -p "$here/.build"
cc -O2 -g -o "$c_bin" "$here/c/ipc-bench.c" -lpthread

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Valgrind 3.19 cannot read the DWARF 5 that swiftc emits and gives up; a copy without debug
# information (symbols kept) runs fine and is the same code.
objcopy --strip-debug "$swift_bin" "$work/ipc-bench"
swift_bin="$work/ipc-bench"

# Ir of one run: the `summary:` line callgrind writes.
instructions() {
  local out="$work/callgrind.out.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" --timeout 600 >"$work/stdout" 2>"$work/stderr" || {
    echo "callgrind.sh: failed: $*" >&2
    cat "$work/stderr" >&2
    exit 1
  }
  grep -m1 '^summary:' "$out" | awk '{print $2}'
  if [ "${KEEP:-}" != "" ]; then cp "$out" "$KEEP.$(basename "$1").$4"; fi
}

echo "callgrind: $* (N1=$N1, N2=$N2 iterations; instructions per op = delta / $((N2 - N1)))"
declare -A per_op
for impl in c swift; do
  bin=$c_bin
  [ "$impl" = swift ] && bin=$swift_bin
  a=$(instructions "$bin" "$@" --iterations "$N1")
  b=$(instructions "$bin" "$@" --iterations "$N2")
  per_op[$impl]=$(python3 -c "print(f'{($b - $a) / ($N2 - $N1):.1f}')")
  echo "impl=$impl Ir($N1)=$a Ir($N2)=$b instructions_per_op=${per_op[$impl]}"
done
python3 -c "
c, s = ${per_op[c]}, ${per_op[swift]}
ratio = s / c
print(f'swift/c instructions per op: {ratio:.2f} (target <= 2.00): {\"ok\" if ratio <= 2.0 else \"MISS\"}')
"
