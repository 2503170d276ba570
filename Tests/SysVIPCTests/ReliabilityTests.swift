import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
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
    arguments: ["semaphore", "set"])
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
  @Test(arguments: ["semaphore", "set"])
  func theDefaultModeIs0600WhateverTheUmask(_ kind: String) async throws {
    let outcome = try await HelperProcess.run(["create-default", kind])
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("mode") == "600", "\(outcome.output)")
  }

  @Test(.enabled(if: isRoot, "needs root to drop to nobody"))
  func aSquattedKeyIsDetectedAndNeverAdopted() async throws {
    let squatter = try await HelperProcess.run(
      ["--as-nobody", "create-open", "semaphore", "666"])
    #expect(squatter.value("privileges") == "dropped", "\(squatter.output)")
    let key = IPCKey(rawValue: try #require(squatter.value("key").flatMap(Int32.init)))
    let id = try #require(squatter.value("id").flatMap(Int32.init))
    defer { try? SysVIPC.Semaphore.remove(id: id) }

    expectIPCError(.existential) { try SysVIPC.Semaphore(key: key, flags: .createExclusive) }
    let opened = try SysVIPC.Semaphore(key: key)
    #expect(opened.id == id)
    let error = expectIPCError(.permissions) { try opened.verifyOwner() }
    #expect(error?.message.contains("65534") == true, "\(String(describing: error))")
    try opened.verifyOwner(uid: 65534)
    expectIPCError(.permissions) { try opened.verifyOwner(uid: 65534, allowedMode: 0o600) }

    let mine = try makeSemaphore()
    defer { try? mine.remove() }
    try mine.verifyOwner()
    try mine.verifyOwner(allowedMode: 0o600)
  }
}
