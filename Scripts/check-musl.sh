#!/usr/bin/env bash
# Type-checks the libraries (SysVIPC, and SysVIPCChannel where it exists) against musl's C
# headers, taking their `canImport(Musl)` branches: a stand-in for a build with the Static Linux
# SDK, which cannot be downloaded here (the GitHub workflow's static SDK job does the real one).
#
#   Scripts/check-musl.sh        (after `swift build`; needs musl-gcc's headers: musl-tools)
#
# How: a copy of the sources with every `canImport(Glibc)` made false, a clang module `Musl`
# over /usr/include/<arch>-linux-musl, and a stand-in for the one thing the real Musl overlay
# adds that the code uses (`errno`). SystemPackage is the glibc build's module (the libraries
# use only its Errno). What this cannot check: code that imports Foundation (its shims need
# glibc's headers), so the tool, the demos and the test helper are left to the real SDK build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

arch=$(uname -m)
musl_include=/usr/include/$arch-linux-musl
[ -d "$musl_include" ] || { echo "check-musl: no $musl_include (apt-get install musl-tools)" >&2; exit 1; }
swiftc=$(command -v swiftc)
clang_includes=("$(dirname "$swiftc")"/../lib/clang/*/include)
clang_include=${clang_includes[0]}
modules=$(swift build --show-bin-path)/Modules
[ -e "$modules/SystemPackage.swiftmodule" ] || { echo "check-musl: run swift build first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/mods" "$work/out"
cp -r Sources "$work/Sources"
cp -r "$modules/SystemPackage.swiftmodule" "$work/out/"
grep -rl --include='*.swift' 'canImport(Glibc)' "$work/Sources" \
  | xargs sed -i 's/canImport(Glibc)/canImport(GlibcIsNotHere)/g'

# The C library as clang modules: SwiftGlibc (which prebuilt modules such as FoundationEssentials
# import) and Musl (re-exporting it), both musl's headers.
cat >"$work/mods/module.modulemap" <<EOF
module SwiftGlibc [system] {
  header "libc.h"
  export *
}
module Musl [system] {
  header "musl.h"
  export *
}
EOF
for header in assert ctype dirent dlfcn errno fcntl fnmatch grp inttypes limits locale math \
  poll pthread pwd sched semaphore signal spawn stdio stdlib string strings termios time unistd \
  sys/file sys/ioctl sys/ipc sys/mman sys/msg sys/resource sys/sem sys/shm sys/socket sys/stat \
  sys/statvfs sys/time sys/types sys/uio sys/utsname sys/wait; do
  echo "#include <$header.h>"
done >"$work/mods/libc.h"
echo '#include "libc.h"' >"$work/mods/musl.h"
cat >"$work/errno.swift" <<'EOF'
// Stands in for the Musl overlay's `errno` and its non-variadic `open` (only type-checked here).
import Musl
var errno: Int32 {
  get { __errno_location().pointee }
  set { __errno_location().pointee = newValue }
}
func open(_ path: UnsafePointer<CChar>, _ oflag: Int32) -> Int32 { fatalError("type-check only") }
EOF

flags=(-module-cache-path "$work/cache" -I "$work/mods" -I "$work/out" -swift-version 6 -package-name swift_sysv_ipc
  -parse-as-library -Xcc -nostdinc -Xcc -isystem -Xcc "$clang_include"
  -Xcc -isystem -Xcc "$musl_include" -Xcc -idirafter -Xcc /usr/include
  -Xcc -idirafter -Xcc "/usr/include/$arch-linux-gnu" -Xcc -D_GNU_SOURCE
  -Xcc "-fmodule-map-file=$root/.build/checkouts/swift-system/Sources/CSystem/include/module.modulemap")
for c_target in "$work"/Sources/C*/; do
  name=$(basename "$c_target")
  echo "module $name { umbrella header \"$c_target/include/$name.h\" export * }" \
    >"$work/mods/$name.modulemap"
  flags+=(-Xcc "-fmodule-map-file=$work/mods/$name.modulemap")
done

for library in SysVIPC SysVIPCChannel; do
  [ -d "$work/Sources/$library" ] || continue
  # The "libc not found" warning is expected: the C library here is musl's, given by hand.
  # shellcheck disable=SC2046 # one argument per source file (the paths have no spaces)
  swiftc -emit-module -module-name "$library" -emit-module-path "$work/out/$library.swiftmodule" \
    "${flags[@]}" "$work/errno.swift" $(find "$work/Sources/$library" -name '*.swift') \
    >"$work/log" 2>&1 && status=0 || status=$?
  grep -v "libc not found" "$work/log" || true
  if [ "$status" -ne 0 ] || grep -q "error:" "$work/log" || [ ! -e "$work/out/$library.swiftmodule" ]; then
    echo "check-musl: $library does not compile against musl" >&2
    exit 1
  fi
  echo "check-musl: $library type-checks against musl's headers"
done
