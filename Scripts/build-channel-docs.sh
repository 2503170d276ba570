#!/usr/bin/env bash
# Builds the SysVIPCChannel documentation catalog as Scripts/build-docs.sh builds SysVIPC's:
# the toolchain's `docc`, no plugin, warnings as errors.
#
#   Scripts/build-channel-docs.sh [OUTPUT]   # default: .build/docs-channel/SysVIPCChannel.doccarchive
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build/docs-channel
output=${1:-$scratch/SysVIPCChannel.doccarchive}
graphs=$scratch/symbol-graphs
module_graphs=$scratch/module-symbol-graphs
docc=${DOCC:-$(command -v docc || echo "$(dirname "$(command -v swift)")/docc")}
[ -x "$docc" ] || { echo "build-channel-docs: no docc found (set DOCC=/path/to/docc)" >&2; exit 1; }

rm -rf "$graphs" "$module_graphs"
mkdir -p "$graphs" "$module_graphs"
swift build --scratch-path "$scratch" --target SysVIPCChannel \
  -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$PWD/$graphs" \
  -Xswiftc -symbol-graph-minimum-access-level -Xswiftc public
cp "$graphs"/SysVIPCChannel.symbols.json "$module_graphs"/
cp "$graphs"/SysVIPCChannel@*.symbols.json "$module_graphs"/ 2>/dev/null || true

rm -rf "$output"
"$docc" convert Sources/SysVIPCChannel/SysVIPCChannel.docc \
  --additional-symbol-graph-dir "$module_graphs" \
  --fallback-display-name SysVIPCChannel \
  --fallback-bundle-identifier org.swift-sysv-ipc.SysVIPCChannel \
  --fallback-default-module-kind "Swift Package" \
  --warnings-as-errors \
  --output-path "$output"
echo "build-channel-docs: $output"
