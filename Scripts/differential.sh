#!/usr/bin/env bash
# Differential testing against Python's sysv_ipc (issue 16): N random operations (default
# 100000) through both libraries, compared after every operation.
#
#   Scripts/differential.sh [N] [SEED]
#
# SEED (default: random, printed) makes a run reproducible. The run is the test
# DifferentialTests.randomSequencesAgreeWithPython, which `swift test` runs with 3,000
# operations; a divergence is printed with its seed and the shortest sequence that shows it.
# Needs python3 with sysv_ipc built from source (as .ci/run installs it); fails when any
# System V object is left behind.
set -euo pipefail
cd "$(dirname "$0")/.."

# As root, in a private IPC namespace (unless SYSVIPC_SHARED_NAMESPACE=1): other programs'
# objects stay out of sight, and the count at the end is exactly what this run left behind.
if [ "$(id -u)" = 0 ] && [ -z "${SYSVIPC_IN_PRIVATE_NAMESPACE:-}" ] \
  && [ -z "${SYSVIPC_SHARED_NAMESPACE:-}" ] && unshare --ipc true 2>/dev/null; then
  exec env SYSVIPC_IN_PRIVATE_NAMESPACE=1 unshare --ipc "$0" "$@"
fi

operations=${1:-100000}
seed=${2:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}
python3 -c "import sysv_ipc" 2>/dev/null || {
  echo "differential: python3 cannot import sysv_ipc; install it with" >&2
  echo "  python3 -m pip install --no-binary sysv-ipc sysv-ipc" >&2
  exit 2
}

objects() {
  { ipcs -s | awk '/^0x/ {print "semaphore", $2}'
    ipcs -m | awk '/^0x/ {print "shared-memory", $2}'
    ipcs -q | awk '/^0x/ {print "message-queue", $2}'; } | sort
}
before=$(mktemp)
objects >"$before"

echo "differential: $operations operations, seed $seed"
status=0
SYSVIPC_DIFFERENTIAL_OPERATIONS=$operations SYSVIPC_DIFFERENTIAL_SEED=$seed \
  swift test --filter DifferentialTests || status=$?

# Objects of this run still there (in the shared namespace, another program's new objects
# may show up too: check them against the run's output before blaming it).
leaked=$(objects | comm -13 "$before" - || true)
rm -f "$before"
where=${SYSVIPC_IN_PRIVATE_NAMESPACE:+ (private IPC namespace)}
if [ -n "$leaked" ]; then
  echo "differential: $(echo "$leaked" | wc -l) objects appeared during the run and are still there$where:"
  echo "$leaked"
  [ -n "${SYSVIPC_IN_PRIVATE_NAMESPACE:-}" ] && status=1
else
  echo "differential: no object left behind$where"
fi
exit "$status"
