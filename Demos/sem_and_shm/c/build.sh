#!/bin/sh
# Builds the C premise and conclusion: ./build.sh [output directory] (default: this directory).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
cc=${CC:-cc}
$cc -std=c11 -Wall -Wextra -O2 -o "$out/premise" "$here/premise.c" "$here/demo.c" "$here/md5.c"
$cc -std=c11 -Wall -Wextra -O2 -o "$out/conclusion" "$here/conclusion.c" "$here/demo.c" "$here/md5.c"
