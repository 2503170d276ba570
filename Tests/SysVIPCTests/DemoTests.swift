import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The demos (Demos/*), run as a user runs them: their output, their exit status, and that they
/// remove what they create, also when interrupted.
@Suite("Demos: the reference's sample programs in Swift", .timingSensitive)
struct DemoTests {
  @Test func semAndShmSwiftWithSwift() async throws {
    try await converse(
      premise: .swift("sem_and_shm", "premise"), conclusion: .swift("sem_and_shm", "conclusion"),
      expectedKinds: [.semaphore, .sharedMemory], iterations: 30)
  }

  @Test(arguments: [SIGINT, SIGTERM])
  func semAndShmPremiseRemovesItsObjectsWhenInterrupted(_ signal: Int32) async throws {
    let key = try unusedKey()
    let directory = try DemoDirectory(params: [
      ("ITERATIONS", "1000"), ("KEY", String(key.rawValue)), ("SHM_SIZE", "4096"),
    ])
    defer {
      directory.remove()
      removeObjects(withKey: key)
    }
    // Without a conclusion, the premise waits for a reply that never comes.
    let premise = try LaunchedProcess(
      builtProduct("sem_and_shm"), ["premise"], directory: directory.path)
    try await premise.waitForOutput("iteration 0")
    #expect(Set(try objects(withKey: key).map(\.kind)) == [.semaphore, .sharedMemory])
    premise.signal(signal)
    let outcome = try await premise.outcome()
    #expect(outcome.status == 128 + signal, "\(outcome)")
    #expect(outcome.output.contains(": removed shared memory "), "\(outcome)")
    #expect(try objects(withKey: key).isEmpty, "the premise removed both objects")
  }

  @Test func semAndShmRefusesAMissingParamsFile() async throws {
    let directory = try DemoDirectory(params: [])
    defer { directory.remove() }
    try FileManager.default.removeItem(atPath: directory.path + "/params.txt")
    let outcome = try await LaunchedProcess.run(
      builtProduct("sem_and_shm"), ["premise"], directory: directory.path)
    #expect(outcome.status == 2, "\(outcome)")
    #expect(outcome.errors.contains("params.txt"), "\(outcome)")
  }

  @Test func bufferProtocol() async throws {
    let demo = try LaunchedProcess(builtProduct("buffer_protocol"), [])
    let outcome = try await demo.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.output.contains("Done!"), "\(outcome)")
    #expect(!outcome.output.contains("FAILED"), "\(outcome)")
    #expect(outcome.output.split(separator: "\n").filter { $0.contains("✓") }.count == 6)
    #expect(
      try IPCSystem.objects(of: .sharedMemory).allSatisfy { $0.creatorPID != demo.pid },
      "the demo removed its segment")
  }

  @Test(arguments: ["yes", "no"])
  func semaphoreContextManager(_ childThrows: String) async throws {
    let outcome = try await LaunchedProcess.run(
      builtProduct("semaphore_context_manager"), ["--throw", childThrows, "--seconds", "0.2"])
    #expect(outcome.status == 0, "\(outcome)")
    let key = try #require(
      outcome.output.split(separator: "\n").first { $0.contains("created semaphore") }?
        .split(separator: " ").last.flatMap { Int32($0) })
    defer { removeObjects(withKey: IPCKey(rawValue: key)) }
    if childThrows == "yes" {
      #expect(outcome.output.contains("child@"), "\(outcome)")
      #expect(outcome.output.contains("ChildError"), "\(outcome)")
      #expect(outcome.output.contains("released all the same"), "\(outcome)")
    } else {
      #expect(outcome.output.contains("leaving the body normally"), "\(outcome)")
      #expect(outcome.output.contains("the child left the body normally"), "\(outcome)")
    }
    #expect(try objects(withKey: IPCKey(rawValue: key)).isEmpty, "the parent removed it")
  }

  @Test func semaphoreContextManagerRemovesItsSemaphoreWhenInterrupted() async throws {
    let demo = try LaunchedProcess(
      builtProduct("semaphore_context_manager"), ["--throw", "no", "--seconds", "60"])
    try await demo.waitForOutput("the child will acquire")
    let line = try #require(demo.output.split(separator: "\n").first { $0.contains("with key") })
    let key = IPCKey(rawValue: try #require(line.split(separator: " ").last.flatMap { Int32($0) }))
    defer { removeObjects(withKey: key) }
    #expect(try objects(withKey: key).count == 1)
    demo.signal(SIGTERM)
    let outcome = try await demo.outcome()
    #expect(outcome.status == 128 + SIGTERM, "\(outcome)")
    #expect(try objects(withKey: key).isEmpty, "the parent removed its semaphore")
  }

  @Test func ftokExperimentCountsCollisionsAndSurvivesBrokenLinks() async throws {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-ftok-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let files = FileManager.default
    try files.createDirectory(atPath: directory + "/sub/deeper", withIntermediateDirectories: true)
    for name in ["a", "b", "sub/c", "sub/deeper/d"] {
      #expect(files.createFile(atPath: "\(directory)/\(name)", contents: Data(name.utf8)))
    }
    // A hard link is the same file: the same key, a collision by construction.
    try files.linkItem(atPath: directory + "/a", toPath: directory + "/sub/a-again")
    try files.createSymbolicLink(atPath: directory + "/broken", withDestinationPath: "/nonexistent")
    try files.createSymbolicLink(atPath: directory + "/loop", withDestinationPath: ".")

    let outcome = try await LaunchedProcess.run(builtProduct("ftok_experiment"), [directory])
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.output.contains("skipped 1: broken link"), "\(outcome)")
    // a, b, sub/c, sub/deeper/d, sub/a-again and the link to the directory itself.
    #expect(outcome.output.contains("Out of 6 files, "), "\(outcome)")
    let collision = try #require(
      outcome.output.split(separator: "\n").first { $0.contains("/sub/a-again") }, "\(outcome)")
    let paths = collision.split(separator: ": ", maxSplits: 1).last?.components(separatedBy: "  ")
    #expect(Set(paths ?? []) == ["\(directory)/a", "\(directory)/sub/a-again"], "\(collision)")
    let summary = try #require(outcome.output.split(separator: "\n").last)
    let counts = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    #expect(counts.count >= 2 && counts[1] >= 2, "\(summary)")

    let missing = try await LaunchedProcess.run(builtProduct("ftok_experiment"), [directory + "/x"])
    #expect(missing.status == 1, "\(missing)")
  }
}

@Suite("Demos: message queues", .timingSensitive)
struct DemoMessageQueueTests {
  @Test func messageQueuesSwiftWithSwift() async throws {
    try await converse(
      premise: .swift("message_queues", "premise"),
      conclusion: .swift("message_queues", "conclusion"), expectedKinds: [.messageQueue],
      iterations: 30)
  }

  @Test func messageQueuesPremiseRemovesItsQueueWhenInterrupted() async throws {
    let key = try unusedKey()
    let directory = try DemoDirectory(params: [("ITERATIONS", "10"), ("KEY", String(key.rawValue))])
    defer {
      directory.remove()
      removeObjects(withKey: key)
    }
    let premise = try LaunchedProcess(
      builtProduct("message_queues"), ["premise"], directory: directory.path)
    try await premise.waitForOutput("iteration 0")
    #expect(try objects(withKey: key).map(\.kind) == [.messageQueue])
    premise.signal(SIGINT)
    let outcome = try await premise.outcome()
    #expect(outcome.status == 128 + SIGINT, "\(outcome)")
    #expect(try objects(withKey: key).isEmpty, "the premise removed its queue")
  }
}
