import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Semaphores shared with a second, real process (the test helper).
@Suite("Semaphore: across processes")
struct SemaphoreProcessTests {
  @Test func blockedAcquireWakesOnRelease() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let helper = try HelperProcess(["sem-acquire", "\(semaphore.id)"])
    try await waitUntil("the helper waits") { try semaphore.waitingForNonzero == 1 }
    #expect(helper.value("acquired") == nil)
    try semaphore.release()
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(try semaphore.value == 0)
    #expect(try semaphore.lastPID == helper.pid)
  }

  @Test func waitingCountsCountABlockedHelper() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let zeroWaiter = try HelperProcess(["sem-zero", "\(semaphore.id)"])
    try await waitUntil("one waits for zero") { try semaphore.waitingForZero == 1 }
    #expect(try semaphore.waitingForNonzero == 0)
    try await semaphore.acquire()
    #expect(try await zeroWaiter.outcome().ok)
    #expect(try semaphore.waitingForZero == 0)

    let acquirers = try (0..<2).map { _ in try HelperProcess(["sem-acquire", "\(semaphore.id)"]) }
    try await waitUntil("two wait for nonzero") { try semaphore.waitingForNonzero == 2 }
    #expect(try semaphore.status().waitingForNonzero == 2)
    try semaphore.release(delta: 2)
    for helper in acquirers { #expect(try await helper.outcome().ok) }
    #expect(try semaphore.waitingForNonzero == 0)
  }

  @Test func undoGivesTheValueBackWhenTheHolderIsKilled() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let holder = try HelperProcess(["sem-acquire", "\(semaphore.id)", "--undo", "--hold"])
    try await holder.waitForLine("holding", "yes")
    #expect(try semaphore.value == 0)
    await holder.terminate()
    #expect(try semaphore.value == 1)

    // Without undo the unit stays taken.
    let plain = try HelperProcess(["sem-acquire", "\(semaphore.id)", "--hold"])
    try await plain.waitForLine("holding", "yes")
    await plain.terminate()
    #expect(try semaphore.value == 0)
  }

  @Test func removalWhileWaitingIsExistentialInTheWaiter() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let helper = try HelperProcess(["sem-acquire", "\(semaphore.id)"])
    try await waitUntil("the helper waits") { try semaphore.waitingForNonzero == 1 }
    try semaphore.remove()
    let outcome = try await helper.outcome()
    #expect(outcome.errorKind == "existential", "\(outcome.output)")
    #expect(outcome.output.contains("removed"), "\(outcome.output)")
  }

  @Test(arguments: ["--sigusr1", "--sigusr1-restart"])
  func signalsDoNotSurfaceDuringAnUntimedWait(_ handler: String) async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let helper = try HelperProcess([handler, "sem-acquire", "\(semaphore.id)"])
    try await waitUntil("the helper waits") { try semaphore.waitingForNonzero == 1 }
    for _ in 0..<3 {
      helper.signal(SIGUSR1)
      // The helper goes back to waiting: it counts as a waiter again.
      try await Task.sleep(for: .milliseconds(20))
      try await waitUntil("the helper waits again") { try semaphore.waitingForNonzero == 1 }
    }
    helper.signal(SIGSTOP)
    try await waitUntil("the helper is stopped") { helper.state == "T" }
    helper.signal(SIGCONT)
    try await waitUntil("the helper waits after SIGCONT") {
      try semaphore.waitingForNonzero == 1 && helper.state == "S"
    }
    try semaphore.release()
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(Int(outcome.value("signals") ?? "0")! >= 1, "\(outcome.output)")
  }
}

/// Permissions, checked by a helper that drops to nobody: root ignores IPC permissions.
@Suite("Semaphore: permissions", .enabled(if: isRoot, "needs root to drop to nobody"))
struct SemaphorePermissionTests {
  @Test func nobodyCannotOpenARoot0600Semaphore() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let open = try await HelperProcess.run(
      ["--as-nobody", "sem-open", "\(semaphore.key.rawValue)", "--mode", "600"])
    #expect(open.value("privileges") == "dropped", "\(open.output)")
    #expect(open.errorKind == "permissions", "\(open.output)")

    let acquire = try await HelperProcess.run(["--as-nobody", "sem-acquire", "\(semaphore.id)"])
    #expect(acquire.value("privileges") == "dropped")
    #expect(acquire.errorKind == "permissions", "\(acquire.output)")

    let remove = try await HelperProcess.run(["--as-nobody", "sem-remove", "\(semaphore.id)"])
    #expect(remove.value("privileges") == "dropped")
    #expect(remove.errorKind == "permissions", "\(remove.output)")
    #expect(try semaphore.value == 1, "nothing changed")
  }

  @Test func readableButNotWritableRefusesAcquire() async throws {
    let semaphore = try makeSemaphore(initialValue: 1, mode: 0o644)
    defer { try? semaphore.remove() }
    let value = try await HelperProcess.run(["--as-nobody", "sem-value", "\(semaphore.id)"])
    #expect(value.value("privileges") == "dropped")
    #expect(value.ok && value.value("value") == "1", "\(value.output)")
    let acquire = try await HelperProcess.run(["--as-nobody", "sem-acquire", "\(semaphore.id)"])
    #expect(acquire.errorKind == "permissions", "\(acquire.output)")
    let setMode = try await HelperProcess.run(
      ["--as-nobody", "sem-set-mode", "\(semaphore.id)", "666"])
    #expect(setMode.errorKind == "permissions", "\(setMode.output)")
    #expect(try semaphore.value == 1)
    #expect(try semaphore.mode == 0o644)
  }
}
