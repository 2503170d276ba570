import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

extension Tag {
  /// Fault, load, security and bad-input tests (issue 7): `swift test --filter Reliability`.
  @Tag static var reliability: Tag
}

/// Whether `unshare --ipc` can give a helper a private IPC namespace here.
let canUnshareIPC: Bool = {
  guard isRoot, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
    return false
  }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
  process.arguments = ["--ipc", "true"]
  do {
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus == 0
  } catch { return false }
}()

@Suite("Reliability: faults", .tags(.reliability))
struct ReliabilityFaultTests {
  @Test func aHolderKilledWithoutUndoLeavesTimedWaitersToTimeOut() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let holder = try HelperProcess(["sem-acquire", "\(semaphore.id)", "--hold"])
    try await holder.waitForLine("holding", "yes")
    await holder.terminate()
    let waiter = try await HelperProcess.run(
      ["sem-acquire", "\(semaphore.id)", "--timeout", "1"])
    #expect(waiter.errorKind == "busy", "\(waiter.output)")
    let seconds = try #require(Double(waiter.value("elapsed") ?? ""))
    #expect(seconds >= 0.95 && seconds < 10, "\(waiter.output)")
  }

  @Test func everyCallOnARemovedSemaphoreIsExistential() throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    try semaphore.remove()
    expectIPCError(.existential) { try semaphore.value }
    expectIPCError(.existential) { try semaphore.acquire() }
    expectIPCError(.existential) { try semaphore.acquire(timeout: .seconds(1)) }
    expectIPCError(.existential) { try semaphore.release() }
    expectIPCError(.existential) { try semaphore.waitForZero() }
    expectIPCError(.existential) { try semaphore.setValue(1) }
    expectIPCError(.existential) { try semaphore.status() }
    expectIPCError(.existential) { try semaphore.mode }
    expectIPCError(.existential) { try semaphore.setMode(0o600) }
    expectIPCError(.existential) { try semaphore.lastPID }
    expectIPCError(.existential) { try semaphore.remove() }
    expectIPCError(.existential) { try SysVIPC.Semaphore(id: semaphore.id) }
  }

  @Test(
    .enabled(if: canUnshareIPC, "needs root and unshare --ipc for a private IPC namespace"),
    arguments: ["semaphore", "set", "shared-memory", "message-queue"])
  func runningOutOfIdentifiersIsAClearErrorAndLeavesNothingHalfCreated(_ kind: String)
    async throws
  {
    let outcome = try await HelperProcess.run(
      ["ns-exhaust", kind, "4"], launcher: ["/usr/bin/unshare", "--ipc"])
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("created") == "4", "\(outcome.output)")
    #expect(outcome.value("listed") == "4", "\(outcome.output)")
    #expect(outcome.value("kind") == "system", "\(outcome.output)")
    #expect(outcome.value("errno") == "\(ENOSPC)", "\(outcome.output)")
    #expect(outcome.value("message")?.contains("limit") == true, "\(outcome.output)")
    #expect(outcome.value("listedAfterRetries") == "4", "\(outcome.output)")
    #expect(outcome.value("listedAfterRemoval") == "0", "\(outcome.output)")
  }
}

@Suite("Reliability: security", .tags(.reliability))
struct ReliabilitySecurityTests {
  /// Created by nobody (root where the runner is not root) under a permissive, the usual and a
  /// strict umask: the mode is always 0600, the library's default, since System V IPC ignores
  /// the umask and the library passes the mode itself.
  @Test(arguments: ["semaphore", "set", "shared-memory", "message-queue"], ["0", "022", "077"])
  func theDefaultModeIs0600WhateverTheUmask(_ kind: String, _ umask: String) async throws {
    let asNobody = isRoot ? ["--as-nobody"] : []
    let outcome = try await HelperProcess.run(
      asNobody + ["create-default", kind, "--umask", umask])
    if isRoot { #expect(outcome.value("privileges") == "dropped", "\(outcome.output)") }
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("mode") == "600", "\(outcome.output)")
  }

  /// Nobody creates an object at a key first (0666, to lure others in). Creating with
  /// `.createExclusive` at that key never adopts it; opening it works, and `verifyOwner`
  /// tells that it is not ours (naming the owner), or too open.
  @Test(
    .enabled(if: isRoot, "needs root to drop to nobody"),
    arguments: ["semaphore", "set", "shared-memory", "message-queue"])
  func aSquattedKeyIsDetectedAndNeverAdopted(_ kind: String) async throws {
    let squatter = try await HelperProcess.run(["--as-nobody", "create-open", kind, "666"])
    #expect(squatter.value("privileges") == "dropped", "\(squatter.output)")
    let key = IPCKey(rawValue: try #require(squatter.value("key").flatMap(Int32.init)))
    let id = try #require(squatter.value("id").flatMap(Int32.init))
    defer { removeObject(kind: kind, id: id) }
    let opened: any IPCObject
    let mine: any IPCObject
    switch kind {
    case "semaphore":
      expectIPCError(.existential) { try SysVIPC.Semaphore(key: key, flags: .createExclusive) }
      opened = try SysVIPC.Semaphore(key: key)
      mine = try makeSemaphore()
    case "set":
      expectIPCError(.existential) {
        try SemaphoreSet(key: key, count: 3, flags: .createExclusive)
      }
      opened = try SemaphoreSet(key: key, count: 0)
      mine = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    case "shared-memory":
      expectIPCError(.existential) { try SharedMemory(key: key, flags: .createExclusive) }
      opened = try SharedMemory(key: key)
      mine = try makeSharedMemory()
    default:
      expectIPCError(.existential) { try MessageQueue(key: key, flags: .createExclusive) }
      opened = try MessageQueue(key: key)
      mine = try makeMessageQueue()
    }
    defer {
      try? opened.remove()
      try? mine.remove()
    }
    #expect(opened.id == id)
    #expect(try opened.uid == 65534)
    let error = expectIPCError(.permissions) { try opened.verifyOwner() }
    #expect(error?.message.contains("65534") == true, "\(String(describing: error))")
    try opened.verifyOwner(uid: 65534)
    let tooOpen = expectIPCError(.permissions) {
      try opened.verifyOwner(uid: 65534, allowedMode: 0o600)
    }
    #expect(tooOpen?.message.contains("0o666") == true, "\(String(describing: tooOpen))")
    try mine.verifyOwner()
    try mine.verifyOwner(allowedMode: 0o600)
  }
}
