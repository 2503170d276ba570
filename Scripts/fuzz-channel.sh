#!/usr/bin/env bash
# Fuzzes the channel's reader and writer (issue 13) with libFuzzer and AddressSanitizer:
# random headers and rings, never a crash, an out-of-bounds access or a hang.
#   Scripts/fuzz-channel.sh [libFuzzer options]     default: -runs=200000 (well under a minute)
#   Scripts/fuzz-channel.sh -max_total_time=600     ten minutes
# .ci/run runs it with its default bound; run it longer by hand after changing the ring.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/module.modulemap" <<MAP
module CSysVIPCChannel {
  header "$PWD/Sources/CSysVIPCChannel/include/CSysVIPCChannel.h"
  export *
}
MAP
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name ChannelFuzz \
  -Xcc -fmodule-map-file="$work/module.modulemap" \
  Sources/SysVIPCChannel/ChannelLayout.swift Sources/SysVIPCChannel/ChannelRing.swift \
  Sources/SysVIPCChannel/ChannelFuzzing.swift Fuzz/ChannelFuzz.swift -o "$work/channel-fuzz" \
  >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
mkdir -p "$work/corpus"
if [ $# -eq 0 ]; then set -- -runs=200000; fi
"$work/channel-fuzz" -timeout=5 -max_len=4096 "$@" "$work/corpus" >"$work/run.log" 2>&1 \
  || { tail -n 60 "$work/run.log"; exit 1; }
grep -E "^Done|#[0-9]+.*DONE" "$work/run.log" | tail -n 2
