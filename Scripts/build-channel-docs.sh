#!/usr/bin/env bash
# Builds the SysVIPCChannel documentation catalog exactly as Scripts/build-docs.sh builds
# SysVIPC's (the toolchain's `docc`, no plugin, warnings as errors, from any state).
#
#   Scripts/build-channel-docs.sh [OUTPUT]   # default: .build/docs/SysVIPCChannel.doccarchive
exec "$(dirname "$0")/build-docs.sh" --target SysVIPCChannel "$@"
