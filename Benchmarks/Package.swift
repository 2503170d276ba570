// swift-tools-version:6.2
// The benchmarks: a package of their own, so that users of the library never inherit what they
// need. Run `python3 run.py` here (see BENCHMARKS.md at the repository root).
import PackageDescription

let package = Package(
  name: "swift-sysv-ipc-benchmarks",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "ipc-bench", targets: ["ipc-bench"]),
    .executable(name: "alloc-count", targets: ["alloc-count"]),
  ],
  dependencies: [
    .package(name: "swift-sysv-ipc", path: "..")
  ],
  targets: [
    // What both implementations need around the measured code and is not under test: CPU
    // pinning (sched_setaffinity's CPU_SET macros do not import), the monotonic clock, and
    // PR_SET_PDEATHSIG for the child process.
    .target(name: "CBenchSupport", cSettings: [.define("_GNU_SOURCE")]),
    // malloc & co. wrapped around glibc's __libc_* entry points, counting calls; linked only
    // into alloc-count, where its definitions interpose on the C library's.
    .target(name: "CAllocCounter", cSettings: [.define("_GNU_SOURCE")]),
    .executableTarget(
      name: "ipc-bench",
      dependencies: [
        .product(name: "SysVIPC", package: "swift-sysv-ipc"),
        .product(name: "SysVIPCChannel", package: "swift-sysv-ipc"), "CBenchSupport",
      ]
    ),
    .executableTarget(
      name: "alloc-count",
      dependencies: [
        .product(name: "SysVIPC", package: "swift-sysv-ipc"),
        .product(name: "SysVIPCChannel", package: "swift-sysv-ipc"), "CAllocCounter", "CBenchSupport",
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)
