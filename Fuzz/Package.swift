// swift-tools-version:6.2
// libFuzzer targets for every parser of outside input the package owns (issue 16). Its own
// package, so that the library's users and `swift test` never build it: Scripts/fuzz.sh builds
// it with `--sanitize=fuzzer --sanitize=address` and runs each target on its corpus
// (Fuzz/Corpus/<target>). Each target checks what the input must give, not only that nothing
// traps. The targets for sources outside the library product (ProgramSupport's params.txt,
// CommandLineValues) compile those files through symbolic links: the package exports them
// in no product.
import PackageDescription

let package = Package(
  name: "SysVIPCFuzz",
  dependencies: [.package(name: "swift-sysv-ipc", path: "..")],
  targets: [
    .target(name: "FuzzSupport"),
    // The decoding of the kernel's status structures (IPC_STAT of each kind).
    .executableTarget(
      name: "fuzz-status",
      dependencies: ["FuzzSupport", .product(name: "SysVIPC", package: "swift-sysv-ipc")]),
    // IPCKey(path:projectID:): ftok's path and project number.
    .executableTarget(
      name: "fuzz-ftok",
      dependencies: ["FuzzSupport", .product(name: "SysVIPC", package: "swift-sysv-ipc")]),
    // The demos' params.txt (Sources/ProgramSupport/Params.swift).
    .executableTarget(
      name: "fuzz-params",
      dependencies: ["FuzzSupport", .product(name: "SysVIPC", package: "swift-sysv-ipc")]),
    // The sysvipc tool's keys, modes, sizes and durations (Sources/CommandLineValues).
    .executableTarget(name: "fuzz-arguments", dependencies: ["FuzzSupport"]),
  ],
  swiftLanguageModes: [.v6]
)
