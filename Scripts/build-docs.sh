#!/usr/bin/env bash
# Builds a documentation catalog (SysVIPC's, or with --target SysVIPCChannel the channel's) with the toolchain's `docc`, without the
# swift-docc-plugin (so that no dependency is added for the package's users), and fails on any
# warning: a broken symbol link or a missing symbol in a topic group stops the build.
#
#   Scripts/build-docs.sh [--target MODULE] [OUTPUT]   # default: .build/docs/MODULE.doccarchive
#
# OUTPUT is relative to the directory the script is called from; its parent folders are created.
# The symbol graph is built in a scratch path of its own (.build/docs), so the extra compiler
# flags do not invalidate the regular build in .build. It works from any state: every run
# compiles the module again, because the compiler writes symbol graphs only when it compiles.
set -euo pipefail

module=SysVIPC
if [ "${1:-}" = "--target" ]; then
  module=${2:?build-docs: --target needs a module name}
  shift 2
fi
output=${1:-}
if [ -n "$output" ] && [ "${output#/}" = "$output" ]; then output=$PWD/$output; fi
cd "$(dirname "$0")/.."

scratch=.build/docs
output=${output:-$PWD/$scratch/$module.doccarchive}
graphs=$scratch/symbol-graphs
module_graphs=$scratch/$module-symbol-graphs

docc=${DOCC:-}
if [ -z "$docc" ]; then
  if command -v docc >/dev/null 2>&1; then
    docc=$(command -v docc)
  elif command -v xcrun >/dev/null 2>&1; then
    docc=$(xcrun --find docc)
  else
    docc=$(dirname "$(command -v swift)")/docc
  fi
fi
[ -x "$docc" ] || { echo "build-docs: no docc found (set DOCC=/path/to/docc)" >&2; exit 1; }

rm -rf "$graphs" "$module_graphs"
mkdir -p "$graphs" "$module_graphs"
# An up-to-date build would not compile the module, and so write no graph: drop its compiled
# objects (only the module's; the dependencies stay built) so that this build compiles it again.
rm -f "$scratch"/*/debug/"$module".build/*.o "$scratch"/*/debug/Modules/"$module".swiftmodule
build_graphs() {
  swift build --scratch-path "$scratch" --target "$module" \
    -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$PWD/$graphs" \
    -Xswiftc -symbol-graph-minimum-access-level -Xswiftc public
}
if ! build_graphs || [ ! -f "$graphs/$module.symbols.json" ]; then
  # A scratch build left in a state SwiftPM cannot resume: start it afresh, once.
  echo "build-docs: rebuilding $scratch from scratch" >&2
  rm -rf "$scratch"
  mkdir -p "$graphs" "$module_graphs"
  build_graphs
fi
# Only this module's graphs (MODULE.symbols.json and its extension graphs such as
# MODULE@Swift.symbols.json); the dependencies' graphs would add their modules to the archive.
cp "$graphs/$module.symbols.json" "$module_graphs"/
cp "$graphs/$module"@*.symbols.json "$module_graphs"/ 2>/dev/null || true

rm -rf "$output"
mkdir -p "$(dirname "$output")"
"$docc" convert "Sources/$module/$module.docc" \
  --additional-symbol-graph-dir "$module_graphs" \
  --fallback-display-name "$module" \
  --fallback-bundle-identifier "org.swift-sysv-ipc.$module" \
  --fallback-default-module-kind "Swift Package" \
  --warnings-as-errors \
  --output-path "$output"
echo "build-docs: $output"
