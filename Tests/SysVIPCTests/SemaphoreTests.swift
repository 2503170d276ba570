import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A new semaphore at a random key, removed by the caller's `defer`.
func makeSemaphore(initialValue: Int = 0, mode: IPCPermissions = 0o600) throws -> SysVIPC.Semaphore
{
  try SysVIPC.Semaphore(key: nil, flags: .createExclusive, mode: mode, initialValue: initialValue)
}

@Suite("Semaphore: the reference's behaviour")
struct SemaphoreTests {
  @Test func createExclusiveThenOpenThenClash() throws {
    let created = try makeSemaphore(initialValue: 3)
    defer { try? created.remove() }
    #expect(created.key != .private)
    #expect(created.id >= 0)

    let opened = try SysVIPC.Semaphore(key: created.key)
    #expect(opened.id == created.id)
    #expect(try opened.value == 3)

    expectIPCError(.existential) {
      try SysVIPC.Semaphore(key: created.key, flags: .createExclusive)
    }
    let orCreated = try SysVIPC.Semaphore(key: created.key, flags: .create, initialValue: 9)
    #expect(orCreated.id == created.id)
    #expect(try created.value == 3, "opening with .create must not reset the value")
  }

  @Test func openMissingKeyIsExistential() throws {
    let semaphore = try makeSemaphore()
    let key = semaphore.key
    try semaphore.remove()
    expectIPCError(.existential) { try SysVIPC.Semaphore(key: key) }
    expectIPCError(.existential) { try semaphore.value }
    expectIPCError(.existential) { try semaphore.release() }
  }

  @Test func createWithCreateFlagAppliesInitialValueOnlyWhenCreating() throws {
    // Find an unused key by creating and removing, then open-or-create at it.
    let probe = try makeSemaphore()
    let key = probe.key
    try probe.remove()
    let first = try SysVIPC.Semaphore(key: key, flags: .create, initialValue: 42)
    defer { try? first.remove() }
    #expect(try first.value == 42)
    try first.acquire()
    let second = try SysVIPC.Semaphore(key: key, flags: .create, initialValue: 42)
    #expect(second.id == first.id)
    #expect(try second.value == 41)
  }

  @Test(arguments: [nil, 0, 42] as [Int?])
  func initialValue(_ value: Int?) throws {
    let semaphore =
      if let value { try makeSemaphore(initialValue: value) } else { try makeSemaphore() }
    defer { try? semaphore.remove() }
    #expect(try semaphore.value == (value ?? 0))
  }

  @Test func privateKey() throws {
    let a = try SysVIPC.Semaphore(key: .private, flags: .create)
    defer { try? a.remove() }
    let b = try SysVIPC.Semaphore(key: .private, flags: .create)
    defer { try? b.remove() }
    #expect(a.id != b.id)
    #expect(a.key == .private)
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(key: .private) }
  }

  @Test func randomKeysDiffer() throws {
    let a = try makeSemaphore()
    defer { try? a.remove() }
    let b = try makeSemaphore()
    defer { try? b.remove() }
    #expect(a.key != b.key)
    #expect(a.key.rawValue > 0)
    #expect(b.key.rawValue > 0)
  }

  @Test func acquireWithDelta() throws {
    let semaphore = try makeSemaphore(initialValue: 5)
    defer { try? semaphore.remove() }
    try semaphore.acquire(delta: 3)
    #expect(try semaphore.value == 2)
    try semaphore.P(delta: 2)
    #expect(try semaphore.value == 0)
    try semaphore.V(delta: 4)
    #expect(try semaphore.value == 4)
    try semaphore.release(delta: 2)
    #expect(try semaphore.value == 6)
    try semaphore.acquire(delta: -2)  // the magnitude is used, as in Python
    #expect(try semaphore.value == 4)
  }

  @Test func badDeltasAreRefusedBeforeAnySyscall() throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    expectIPCError(.outOfRange) { try semaphore.acquire(delta: 0) }
    expectIPCError(.outOfRange) { try semaphore.release(delta: 0) }
    expectIPCError(.outOfRange) { try semaphore.release(delta: 32768) }
    expectIPCError(.outOfRange) { try semaphore.acquire(delta: -40000) }
    expectIPCError(.outOfRange) { try semaphore.acquire(delta: Int.min) }
    #expect(try semaphore.value == 1)
  }

  @Test func nonBlockingAcquireOnZeroIsBusy() throws {
    var semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    semaphore.block = false
    let error = expectIPCError(.busy) { try semaphore.acquire() }
    #expect(error?.message.contains("semaphore \(semaphore.id)") == true)
    #expect(try semaphore.value == 0)
  }

  @Test func zeroTimeoutIsBusyAtOnce() throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let (_, seconds) = elapsed { expectIPCError(.busy) { try semaphore.acquire(timeout: .zero) } }
    #expect(seconds < 0.5)
  }

  @Test func timeoutExpiresAfterItsDuration() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let seconds = try await onThread {
      elapsed { expectIPCError(.busy) { try semaphore.acquire(timeout: .milliseconds(1500)) } }.1
    }
    #expect(seconds >= 1.45, "returned after \(seconds) s")
    #expect(seconds < 6, "returned after \(seconds) s")
  }

  @Test func releaseUpToTheMaximumThenOutOfRange() throws {
    #expect(SysVIPC.Semaphore.maxValue == 32767)
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    for _ in 0..<32766 { try semaphore.release() }
    #expect(try semaphore.value == 32767)
    expectIPCError(.outOfRange) { try semaphore.release() }
    #expect(try semaphore.value == 32767)
  }

  @Test func setValueChecksTheRange() throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    try semaphore.setValue(7)
    #expect(try semaphore.value == 7)
    expectIPCError(.outOfRange) { try semaphore.setValue(-1) }
    expectIPCError(.outOfRange) { try semaphore.setValue(SysVIPC.Semaphore.maxValue + 1) }
    #expect(try semaphore.value == 7)
  }

  @Test func withAcquiredReleasesAlsoWhenTheBodyThrows() throws {
    struct Boom: Error {}
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let result = try semaphore.withAcquired { () throws -> Int in
      #expect(try semaphore.value == 0)
      return 7
    }
    #expect(result == 7)
    #expect(try semaphore.value == 1)
    #expect(throws: Boom.self) {
      try semaphore.withAcquired {
        #expect(try semaphore.value == 0)
        throw Boom()
      }
    }
    #expect(try semaphore.value == 1)
  }

  @Test func waitForZero() async throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    try await semaphore.waitForZero()
    try semaphore.Z(timeout: .zero)
    try semaphore.release()
    expectIPCError(.busy) { try semaphore.waitForZero(timeout: .zero) }
    var nonBlocking = semaphore
    nonBlocking.block = false
    expectIPCError(.busy) { try nonBlocking.waitForZero() }
    let seconds = try await onThread {
      elapsed { expectIPCError(.busy) { try semaphore.waitForZero(timeout: .milliseconds(300)) } }
        .1
    }
    #expect(seconds >= 0.28)
  }

  @Test func negativeTimeoutIsRefused() throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    expectIPCError(.invalidArgument) { try semaphore.acquire(timeout: .milliseconds(-1)) }
    #expect(try semaphore.value == 1)
  }

  @Test func badCreationArgumentsAreRefused() throws {
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(key: nil) }
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(key: nil, flags: .create) }
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(key: 1234, flags: .exclusive) }
    expectIPCError(.invalidArgument) {
      try SysVIPC.Semaphore(key: nil, flags: .createExclusive, mode: 0o1777)
    }
    #if os(Linux)
      expectIPCError(.invalidArgument) {
        try SysVIPC.Semaphore(key: nil, flags: [.createExclusive, .hugePages])
      }
    #endif
    expectIPCError(.outOfRange) {
      try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 32768)
    }
    expectIPCError(.outOfRange) {
      try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: -1)
    }
  }

  @Test func removeThenOpenIsExistential() throws {
    let semaphore = try makeSemaphore()
    let id = semaphore.id
    try SysVIPC.Semaphore.remove(id: id)
    expectIPCError(.existential) { try SysVIPC.Semaphore(id: id) }
    expectIPCError(.existential) { try SysVIPC.Semaphore(key: semaphore.key) }
    expectIPCError(.existential) { try semaphore.remove() }
  }

  @Test func openByID() throws {
    let semaphore = try makeSemaphore(initialValue: 2)
    defer { try? semaphore.remove() }
    let byID = try SysVIPC.Semaphore(id: semaphore.id)
    #expect(byID.key == semaphore.key)
    #expect(try byID.value == 2)
  }

  @Test func attributes() throws {
    let before = Date()
    let semaphore = try makeSemaphore(mode: 0o640)
    defer { try? semaphore.remove() }
    #expect(try semaphore.uid == geteuid())
    #expect(try semaphore.gid == getegid())
    #expect(try semaphore.cuid == geteuid())
    #expect(try semaphore.cgid == getegid())
    #expect(try semaphore.mode == 0o640)
    #expect(try semaphore.waitingForNonzero == 0)
    #expect(try semaphore.waitingForZero == 0)
    #expect(try semaphore.lastOperationTime == nil)
    let changed = try #require(try semaphore.lastChangeTime)
    #expect(abs(changed.timeIntervalSince(before)) < 5)

    try semaphore.release()
    #expect(try semaphore.lastPID == getpid())
    let operated = try #require(try semaphore.lastOperationTime)
    #expect(abs(operated.timeIntervalSinceNow) < 5)

    try semaphore.setMode(0o600)
    #expect(try semaphore.mode == 0o600)
    try semaphore.setOwner(uid: geteuid(), gid: getegid())
    expectIPCError(.invalidArgument) { try semaphore.setMode(0o4000) }
    expectIPCError(.invalidArgument) { try semaphore.setOwner(uid: UInt32.max) }

    let status = try semaphore.status()
    #expect(status.key == semaphore.key)
    #expect(status.id == semaphore.id)
    #expect(status.value == 1)
    #expect(status.lastPID == getpid())
    #expect(status.mode == 0o600)
    #expect(status.uid == geteuid())
    #expect(status.lastOperationTime != nil)
    #expect(SysVIPC.Semaphore.timeoutSupported)
  }

  @Test func errorMessagesNameOperationAndObject() throws {
    let semaphore = try makeSemaphore()
    try semaphore.remove()
    let error = expectIPCError(.existential) { try semaphore.release() }
    #expect(error?.message.contains("semop on semaphore \(semaphore.id)") == true)
    #expect(error?.errno != nil)
    #expect(error?.description.contains("semaphore") == true)
  }
}
