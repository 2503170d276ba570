#!/usr/bin/env bash
# Runs the whole test suite under a sanitizer and fails on any report (issue 16).
#
#   Scripts/sanitize.sh thread      # ThreadSanitizer, in .build-tsan
#   Scripts/sanitize.sh address     # AddressSanitizer (+ UBSan for the C code), in .build-asan
#
# Everything the tests start (SysVIPCTestHelper, the `sysvipc` tool, the demos) is built with
# the same sanitizer, and its reports would go to a standard error the tests read and drop: so
# every process writes its reports into one folder (the runtimes' log_path), and the script
# fails when the folder holds any, or when `swift test` fails. A few tests measure what a
# sanitizer changes on purpose and skip or adapt, saying so (Tests/SysVIPCTests/Support/
# Sanitizer.swift). Extra arguments go to `swift test` (e.g. `--filter Semaphore`).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-}
shift || true
case "$kind" in
  thread) flags=(--sanitize=thread); scratch=.build-tsan ;;
  # swiftc has no UndefinedBehaviorSanitizer on Linux: the C code (CSysVIPC, swift-system's
  # shims) gets it through clang, and its handlers are in the AddressSanitizer runtime.
  address) flags=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined); scratch=.build-asan ;;
  *) echo "usage: Scripts/sanitize.sh thread|address [swift test arguments]" >&2; exit 2 ;;
esac

reports=$(mktemp -d "${TMPDIR:-/tmp}/sysvipc-$kind-reports.XXXXXX")
log_options="log_path=$reports/report:log_exe_name=1"
# halt_on_error=0: report every problem, not only the first; the folder decides the verdict.
# intercept_tls_get_addr=0, for both: the runtimes' tracking of dynamic TLS crashes now and then
# (a SEGV in DTLS_on_tls_get_addr on a thread that had just started, at its first touch of the
# Swift runtime's thread-local context: once under ASan in swift_beginAccess, once under TSan in
# swift_once), a known fault of the sanitizer runtimes (google/sanitizers#1322) that Chromium
# and Node.js work around the same way. ASan needs that tracking only for LeakSanitizer (off
# here); TSan uses it to forget a dead thread's dynamic TLS, and reported no race without it.
export TSAN_OPTIONS="$log_options:halt_on_error=0:second_deadlock_stack=1:intercept_tls_get_addr=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export ASAN_OPTIONS="$log_options:halt_on_error=0:detect_leaks=0:intercept_tls_get_addr=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# Swift's crash backtracer clones the crashing process, which ThreadSanitizer's runtime does
# not survive (a CHECK failure of its own): a test that crashes a demo on purpose would leave a
# report that is not one.
export SWIFT_BACKTRACE=enable=no
export UBSAN_OPTIONS="$log_options:halt_on_error=0:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

start=$SECONDS
swift build --build-tests "${flags[@]}" --scratch-path "$scratch"
built=$SECONDS
status=0
swift test --skip-build "${flags[@]}" --scratch-path "$scratch" "$@" || status=$?
echo "sanitize ($kind): build $((built - start)) s, tests $((SECONDS - built)) s, swift test status $status"

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize ($kind): sanitizer reports:"
  for report in "$reports"/*; do
    echo "=== $report"
    cat "$report"
  done
  exit 1
fi
rm -rf "$reports"
[ "$status" -eq 0 ] || exit "$status"
echo "sanitize ($kind): no sanitizer report"
