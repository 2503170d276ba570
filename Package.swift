// swift-tools-version:6.2
import PackageDescription

let package = Package(
  name: "swift-sysv-ipc",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "SysVIPC", targets: ["SysVIPC"]),
    .library(name: "SysVIPCChannel", targets: ["SysVIPCChannel"]),
    .executable(name: "sysvipc", targets: ["sysvipc"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // The C calls Swift cannot make by itself: the variadic semctl, semtimedop (hidden without
    // _GNU_SOURCE), and the kernel's control structures flattened into fixed layouts.
    .target(
      name: "CSysVIPC",
      cSettings: [.define("_GNU_SOURCE")]
    ),
    .target(
      name: "SysVIPC",
      dependencies: [
        "CSysVIPC",
        .product(name: "SystemPackage", package: "swift-system"),
      ],
      // Fault injection for the tests (Core/FaultInjection.swift), as swift-system does it.
      swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]
    ),
    // What the `sysvipc` tool and the demos share: child processes, removing what a program
    // created when a signal comes, MD5, params.txt, logging.
    .target(name: "ProgramSupport", dependencies: ["SysVIPC"]),
    // The tool's value parsers (keys, modes, sizes, durations): plain functions with typed
    // errors, standard library only, so that they can be compiled alone (e.g. for libFuzzer).
    .target(name: "CommandLineValues"),
    // A message channel in shared memory (ring + semaphore set), built on SysVIPC's public API.
    // CSysVIPCChannel: atomics on the segment's words and an allocation-free semop.
    .target(name: "CSysVIPCChannel", cSettings: [.define("_GNU_SOURCE")]),
    .target(
      name: "SysVIPCChannel",
      dependencies: [
        "SysVIPC", "CSysVIPCChannel", .product(name: "SystemPackage", package: "swift-system"),
      ]
    ),
    // The channel's C implementation (sysvipc_channel.h, beside it) as a program: the tests' C peer.
    .executableTarget(name: "sysvipc-channel-c", path: "Sources/SysVIPCChannelC"),
    // The command-line tool: `sysvipc list`, `limits`, `info`, `remove`, ... `sysvipc demo`
    // shares the demos' MD5, child process and cleanup on signals (ProgramSupport).
    .executableTarget(
      name: "sysvipc",
      dependencies: [
        "SysVIPC",
        "ProgramSupport",
        "CommandLineValues",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // The second process of the multi-process tests: the tests launch it, it never forks.
    .executableTarget(
      name: "SysVIPCTestHelper",
      dependencies: ["SysVIPC", "SysVIPCChannel"]
    ),
    // The demos (Demos/<name>, each with a README): the reference's sample programs in Swift.
    // `swift run <name>`. ProgramSupport (above) holds what they share with the tool.
    .executableTarget(
      name: "sem_and_shm", dependencies: ["SysVIPC", "ProgramSupport"],
      path: "Demos/sem_and_shm", exclude: ["README.md", "params.txt", "c"]),
    .executableTarget(
      name: "message_queues", dependencies: ["SysVIPC", "ProgramSupport"],
      path: "Demos/message_queues", exclude: ["README.md", "params.txt"]),
    .executableTarget(
      name: "buffer_protocol", dependencies: ["SysVIPC", "ProgramSupport"],
      path: "Demos/buffer_protocol", exclude: ["README.md"]),
    .executableTarget(
      name: "semaphore_context_manager", dependencies: ["SysVIPC", "ProgramSupport"],
      path: "Demos/semaphore_context_manager", exclude: ["README.md"]),
    .executableTarget(
      name: "ftok_experiment", dependencies: ["SysVIPC", "ProgramSupport"],
      path: "Demos/ftok_experiment", exclude: ["README.md"]),
    .testTarget(
      name: "SysVIPCTests",
      dependencies: [
        "SysVIPC", "SysVIPCChannel", "SysVIPCTestHelper", "CommandLineValues", "sysvipc-channel-c",
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)

// Documentation: `SYSVIPC_DOCC=1 swift package generate-documentation --target SysVIPC`
// (or Scripts/build-docs.sh). The DocC plugin is added only when asked for, so the package's
// users never fetch it.
if Context.environment["SYSVIPC_DOCC"] != nil {
  package.dependencies.append(
    .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"))
}
