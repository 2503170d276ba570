import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

@Suite("SemaphoreSet: sets with atomic operations")
struct SemaphoreSetTests {
  func makeSet(_ count: Int = 3) throws -> SemaphoreSet {
    try SemaphoreSet(key: nil, count: count, flags: .createExclusive)
  }

  @Test func createOpenAndValues() throws {
    let set = try makeSet()
    defer { try? set.remove() }
    #expect(set.count == 3)
    #expect(try set.values() == [0, 0, 0])
    try set.setValues([1, 2, 3])
    #expect(try set.values() == [1, 2, 3])
    try set.setValue(9, at: 1)
    #expect(try set.value(at: 1) == 9)
    let opened = try SemaphoreSet(key: set.key, count: 0)
    #expect(opened.id == set.id)
    #expect(opened.count == 3)
    let byID = try SemaphoreSet(id: set.id)
    #expect(byID.key == set.key && byID.count == 3)
    expectIPCError(.invalidArgument) { try SemaphoreSet(key: set.key, count: 4) }
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(id: set.id) }
    let status = try set.status()
    #expect(status.count == 3)
    #expect(status.values == [1, 9, 3])
    #expect(status.uid == geteuid())
  }

  @Test func badInputChangesNothing() throws {
    let set = try makeSet(2)
    defer { try? set.remove() }
    try set.setValues([5, 5])
    expectIPCError(.invalidArgument) { try set.setValues([1]) }
    expectIPCError(.outOfRange) { try set.setValues([1, 40000]) }
    expectIPCError(.outOfRange) { try set.setValue(1, at: 2) }
    expectIPCError(.outOfRange) { try set.value(at: -1) }
    expectIPCError(.outOfRange) { try set.apply([.init(index: 2, delta: 1)]) }
    expectIPCError(.outOfRange) { try set.apply([.init(index: 0, delta: 40000)]) }
    expectIPCError(.invalidArgument) { try set.apply([]) }
    expectIPCError(.invalidArgument) {
      try SemaphoreSet(key: nil, count: 0, flags: .createExclusive)
    }
    expectIPCError(.invalidArgument) {
      try SemaphoreSet(key: nil, count: -1, flags: .createExclusive)
    }
    #expect(try set.values() == [5, 5])
  }

  @Test func operationsThatCannotAllProceedChangeNothing() throws {
    let set = try makeSet(2)
    defer { try? set.remove() }
    try set.setValues([0, 7])
    // The second operation could proceed, the first cannot: neither happens.
    expectIPCError(.busy) {
      try set.apply([
        .init(index: 0, delta: -1, nonBlocking: true), .init(index: 1, delta: -1),
      ])
    }
    #expect(try set.values() == [0, 7])
    expectIPCError(.busy) {
      try set.apply([.init(index: 1, delta: -1), .init(index: 0, delta: -1)], timeout: .zero)
    }
    #expect(try set.values() == [0, 7])
    try set.apply([.init(index: 1, delta: -2), .init(index: 0, delta: 2)])
    #expect(try set.values() == [2, 5])
    #expect(try set.lastPID(at: 0) == getpid())
    #expect(try set.waitingForNonzero(at: 0) == 0)
    #expect(try set.waitingForZero(at: 1) == 0)
  }

  /// A writer moves a unit from semaphore 0 to 1 and back, with `apply`, until a reader process
  /// has read both values 50,000 times with GETALL: the sum is never off, and the reader saw
  /// both states (so it really read while the transfers ran).
  @Test func aTransferIsNeverSeenHalfDone() async throws {
    let set = try makeSet(2)
    defer { try? set.remove() }
    let total = 1000
    try set.setValues([total, 0])
    let reader = try HelperProcess(["set-reader", "\(set.id)", "\(total)", "50000"])
    try await reader.waitForLine("reading", "yes")
    let transfers = try await onThread { () throws -> Int in
      var transfers = 0
      while !reader.output.contains("violations=") {
        for _ in 0..<100 {
          try set.apply([.init(index: 0, delta: -1), .init(index: 1, delta: 1)])
          try set.apply([.init(index: 1, delta: -1), .init(index: 0, delta: 1)])
        }
        transfers += 200
        if transfers > 50_000_000 { break }
      }
      return transfers
    }
    let outcome = try await reader.outcome(timeout: .seconds(120))
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("violations") == "0", "\(outcome.output) after \(transfers) transfers")
    #expect(outcome.value("distinct") == "2", "\(outcome.output)")
    #expect(try set.values() == [total, 0])
  }

  @Test func aSetCreatedByPlainCOpensAndWorks() async throws {
    let created = try await HelperProcess.run(["set-create-raw", "3"])
    let id = try #require(created.value("id").flatMap(Int32.init), "\(created.output)")
    defer { try? SemaphoreSet.remove(id: id) }
    let set = try SemaphoreSet(id: id)
    #expect(set.count == 3)
    try await set.apply([.init(index: 2, delta: 1), .init(index: 0, delta: 1)])
    #expect(try set.values() == [1, 0, 1])
  }

  @Test func undoOnASet() throws {
    let set = try makeSet(2)
    defer { try? set.remove() }
    try set.setValues([1, 1])
    try set.apply([.init(index: 0, delta: -1, undo: true)])
    #expect(try set.value(at: 0) == 0)
    try set.apply([.init(index: 0, delta: 1, undo: true)])
    #expect(try set.value(at: 0) == 1)
  }
}

@Suite("Semaphore: race-free open-or-create")
struct RaceFreeCreationTests {
  @Test func eightProcessesInitialiseExactlyOnce() async throws {
    let probe = try makeSemaphore()
    let key = probe.key
    try probe.remove()
    let gate = try makeSemaphore(initialValue: 1)
    defer { try? gate.remove() }
    defer { if let s = try? SysVIPC.Semaphore(key: key) { try? s.remove() } }

    let racers = try (0..<8).map { _ in
      try HelperProcess(["race-open-or-create", "\(key.rawValue)", "\(gate.id)", "8"])
    }
    try await waitUntil("all eight wait at the gate") { try gate.waitingForZero == 8 }
    try gate.setValue(0)
    var created = 0
    for racer in racers {
      let outcome = try await racer.outcome()
      #expect(outcome.ok, "\(outcome.output)")
      if outcome.value("created") == "yes" { created += 1 }
    }
    #expect(created == 1)
    // Initialised to 8 once, then each racer took one: a second initialisation would show.
    let semaphore = try SysVIPC.Semaphore(key: key)
    #expect(try semaphore.value == 0)
  }

  @Test func openOrCreateWaitsForAnUninitialisedSet() throws {
    // A set created without the initialisation mark (sem_otime 0) makes openOrCreate wait,
    // then give up with .busy at its timeout.
    let bare = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? bare.remove() }
    let (_, seconds) = elapsed {
      expectIPCError(.busy) {
        try SysVIPC.Semaphore.openOrCreate(
          key: bare.key, initialValue: 1, timeout: .milliseconds(300))
      }
    }
    #expect(seconds >= 0.28)
    #expect(try bare.value == 0)
    try bare.release()
    try bare.acquire()
    let opened = try SysVIPC.Semaphore.openOrCreate(key: bare.key, initialValue: 1)
    #expect(opened.id == bare.id)
    #expect(try opened.value == 0, "an existing semaphore is not re-initialised")
  }

  @Test func openOrCreateRefusesThePrivateKey() {
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore.openOrCreate(key: .private) }
  }
}

@Suite("Semaphore: async forms")
struct SemaphoreAsyncTests {
  @Test func asyncAcquireWakesOnRelease() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    async let acquired: Void = semaphore.acquire()
    try await waitUntil("the async acquire waits") { try semaphore.waitingForNonzero == 1 }
    let helper = try await HelperProcess.run(["sem-release", "\(semaphore.id)"])
    #expect(helper.ok)
    try await acquired
    #expect(try semaphore.value == 0)
  }

  @Test func cancellingAnAcquireEndsItAndChangesNothing() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let task = Task { try await semaphore.acquire() }
    try await waitUntil("the acquire waits") { try semaphore.waitingForNonzero == 1 }
    task.cancel()
    let result = await task.result
    guard case .failure(let error) = result else {
      Issue.record("a cancelled acquire succeeded")
      return
    }
    #expect((error as? IPCError)?.isCancellation == true, "\(error)")
    try await waitUntil("nobody waits") { try semaphore.waitingForNonzero == 0 }
    #expect(try semaphore.value == 0)
  }

  /// Timed in a helper process: this test process's thread pool is busy with other tests.
  @Test(.timingSensitive) func aCancelledAcquireReturnsWithin50Milliseconds() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let outcome = try await HelperProcess.run(["async-cancel-acquire", "\(semaphore.id)"])
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("outcome") == "cancelled", "\(outcome.output)")
    let milliseconds = try #require(Double(outcome.value("cancelMs") ?? ""))
    #expect(milliseconds < 50, "\(outcome.output)")
    #expect(try semaphore.value == 0)
    #expect(try semaphore.waitingForNonzero == 0)
  }

  @Test func asyncTimeoutAndWaitForZero() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let clock = ContinuousClock()
    let start = clock.now
    do {
      try await semaphore.waitForZero(timeout: .milliseconds(200))
      Issue.record("waitForZero on 1 succeeded")
    } catch {
      #expect(error.kind == .busy && !error.isCancellation, "\(error)")
    }
    #expect(clock.now - start >= .milliseconds(190))
    try await semaphore.acquire(timeout: .seconds(5))
    try await semaphore.waitForZero(timeout: .seconds(5))
    try semaphore.release()
    let value = try await semaphore.withAcquired(timeout: .zero) { 1 }
    #expect(value == 1)
  }

  @Test func cancellingAnApplyChangesNothing() async throws {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? set.remove() }
    try set.setValues([0, 3])
    let task = Task {
      try await set.apply([.init(index: 1, delta: -1), .init(index: 0, delta: -1)])
    }
    try await waitUntil("the apply waits") { try set.waitingForNonzero(at: 0) == 1 }
    task.cancel()
    let result = await task.result
    if case .success = result { Issue.record("a cancelled apply succeeded") }
    #expect(try set.values() == [0, 3])
  }
}
