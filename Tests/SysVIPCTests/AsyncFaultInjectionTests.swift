import Foundation
import SystemPackage
import Testing

@testable import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

// The async forms against every errno of the call they wait in (issue 15, with issue 12's
// waits). An async form first tries without waiting on the caller's thread; only when that
// would block does it wait, on a thread of the wait pool (or, in a task that prefers
// IPCWaitExecutor, on the task's own thread). The task's FaultPlan goes with the wait to that
// thread, so each case makes the first try report "would block" (the object is in fact ready)
// and the waiting call fail: the error must map by the one errno table, carry the errno, change
// nothing; EINTR must be retried. Each case runs both ways: handed to the pool, and on the
// executor's thread.

/// One async operation: the fault that sends it to the wait, the call that then fails.
struct AsyncFaultCase: CustomTestStringConvertible, Sendable {
  let name: String
  /// The first, non-waiting try, made to say "would block".
  let forced: FaultPlan.Fault
  /// The call made while waiting, and which one of its calls (1-based, counted with the forced
  /// one when it is the same call).
  let call: SystemCallName
  let nth: Int
  /// Errnos the operation handles by design (it then succeeds), with why.
  var absorbed: [Int32: String] = [:]
  let setUp: @Sendable () throws -> AsyncFixture

  var testDescription: String { name }
}

struct AsyncFixture: Sendable {
  var act: @Sendable () async throws(IPCError) -> Void
  var snapshot: @Sendable () throws -> String
  var cleanup: @Sendable () -> Void
}

private func readySemaphore(_ value: Int) throws -> SysVIPC.Semaphore {
  try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: value)
}

private func queueSnapshot(_ queue: MessageQueue) throws -> String {
  let status = try queue.status()
  return "\(status.currentMessages) \(status.currentBytes)"
}

let asyncFaultCases: [AsyncFaultCase] = [
  AsyncFaultCase(
    name: "async Semaphore.acquire()", forced: .init(.semop, errno: EAGAIN), call: .semop, nth: 2
  ) {
    let s = try readySemaphore(1)
    return AsyncFixture(
      act: { () async throws(IPCError) in try await s.acquire() },
      snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  AsyncFaultCase(
    name: "async Semaphore.acquire(timeout:delta: 2)", forced: .init(.semop, errno: EAGAIN),
    call: .semtimedop, nth: 1
  ) {
    let s = try readySemaphore(2)
    return AsyncFixture(
      act: { () async throws(IPCError) in try await s.acquire(timeout: .seconds(5), delta: 2) },
      snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  AsyncFaultCase(
    name: "async Semaphore.waitForZero()", forced: .init(.semop, errno: EAGAIN), call: .semop,
    nth: 2
  ) {
    let s = try readySemaphore(0)
    return AsyncFixture(
      act: { () async throws(IPCError) in try await s.waitForZero() },
      snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  AsyncFaultCase(
    name: "async SemaphoreSet.apply", forced: .init(.semop, errno: EAGAIN), call: .semop, nth: 2
  ) {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    try set.setValues([1, 0])
    return AsyncFixture(
      act: { () async throws(IPCError) in
        try await set.apply([.init(index: 0, delta: -1), .init(index: 1, delta: 1)])
      }, snapshot: { "\(try set.values())" }, cleanup: { try? set.remove() })
  },
  AsyncFaultCase(
    name: "async MessageQueue.send", forced: .init(.msgsnd, errno: EAGAIN), call: .msgsnd, nth: 2,
    absorbed: [EAGAIN: "the queue was full: a blocking send waits (in the kernel) for room"]
  ) {
    let q = try MessageQueue(key: nil, flags: .createExclusive)
    return AsyncFixture(
      act: { () async throws(IPCError) in try await q.send("hello") },
      snapshot: { try queueSnapshot(q) }, cleanup: { try? q.remove() })
  },
  AsyncFaultCase(
    name: "async MessageQueue.receive()", forced: .init(.msgrcv, errno: ENOMSG), call: .msgrcv,
    nth: 2
  ) {
    let q = try MessageQueue(key: nil, flags: .createExclusive)
    try q.send("queued")
    return AsyncFixture(
      act: { () async throws(IPCError) in _ = try await q.receive() },
      snapshot: { try queueSnapshot(q) }, cleanup: { try? q.remove() })
  },
  AsyncFaultCase(
    name: "async MessageQueue.receive(timeout: 5 s)", forced: .init(.msgrcv, errno: ENOMSG),
    call: .msgrcv, nth: 2
  ) {
    let q = try MessageQueue(key: nil, flags: .createExclusive)
    try q.send("queued")
    return AsyncFixture(
      act: { () async throws(IPCError) in _ = try await q.receive(timeout: .seconds(5)) },
      snapshot: { try queueSnapshot(q) }, cleanup: { try? q.remove() })
  },
]

/// Runs `body` in a task that prefers ``IPCWaitExecutor`` (`onExecutor`) or in the caller's.
private func run(
  onExecutor: Bool, _ body: @Sendable () async throws(IPCError) -> Void
) async -> Result<Void, IPCError> {
  if onExecutor {
    return await withTaskExecutorPreference(IPCWaitExecutor.shared) {
      do throws(IPCError) { return .success(try await body()) } catch { return .failure(error) }
    }
  }
  do throws(IPCError) { return .success(try await body()) } catch { return .failure(error) }
}

@Suite("Fault injection: the async forms × every errno of the call they wait in")
struct AsyncFaultInjectionTests {
  @Test(arguments: asyncFaultCases, [false, true])
  func everyErrnoOfTheWaitMapsAndChangesNothing(_ faultCase: AsyncFaultCase, onExecutor: Bool)
    async throws
  {
    for error in errnosOf[faultCase.call]! {
      let fixture = try faultCase.setUp()
      defer { fixture.cleanup() }
      let before = try fixture.snapshot()
      let plan = FaultPlan(
        faultCase.forced, .init(faultCase.call, nth: faultCase.nth, errno: error))
      let outcome = await FaultPlan.$current.withValue(plan) {
        await run(onExecutor: onExecutor, fixture.act)
      }
      let label =
        "\(faultCase.name)\(onExecutor ? " on IPCWaitExecutor" : ""), \(faultCase.call) fails "
        + "with \(Errno(rawValue: error))"
      #expect(plan.calls(faultCase.call) >= faultCase.nth, "\(label): the waiting call was made")
      switch outcome {
      case .success:
        #expect(faultCase.absorbed[error] != nil, "\(label): succeeded")
        continue
      case .failure(let thrown):
        #expect(faultCase.absorbed[error] == nil, "\(label): \(thrown)")
        expectMapped(thrown, errno: error, kind: documentedKind(error), label)
        #expect(!thrown.isCancellation, "\(label): \(thrown)")
      }
      #expect(try fixture.snapshot() == before, "\(label): state changed")
    }
  }

  /// The waiting call interrupted three times: retried each time, then the operation completes.
  @Test(arguments: asyncFaultCases, [false, true])
  func interruptionsOfTheWaitAreRetried(_ faultCase: AsyncFaultCase, onExecutor: Bool)
    async throws
  {
    let fixture = try faultCase.setUp()
    defer { fixture.cleanup() }
    let plan = FaultPlan(
      faultCase.forced, .init(faultCase.call, nth: faultCase.nth, errno: EINTR, times: 3))
    let outcome = await FaultPlan.$current.withValue(plan) {
      await run(onExecutor: onExecutor, fixture.act)
    }
    #expect(throws: Never.self, "\(faultCase.name)") { try outcome.get() }
    #expect(plan.calls(faultCase.call) >= faultCase.nth + 3, "\(faultCase.name): retried")
  }

  /// A cancellation whose signal reaches the waiting thread just before it enters the kernel is
  /// not lost: the plan holds the waiting `msgrcv` back for 1 s, the task is cancelled in that
  /// time (the signal's handler runs while the thread is not in its wait), and the signal is
  /// sent again until the wait ends. Without the repetition the receive would wait for ever.
  /// A try whose cancel came later than 1 s after the task started (a test task that got its
  /// turn late) proves nothing and is made again, up to 5 times.
  @Test(arguments: [false, true])
  func aCancellationJustBeforeTheKernelIsNotLost(onExecutor: Bool) async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let holdNanoseconds: Int64 = 1_000_000_000
    var heldWhenCancelled = false
    for _ in 0..<5 where !heldWhenCancelled {
      // The 1st msgrcv is the try that does not wait; the 2nd waits, 1 s late.
      let plan = FaultPlan(.init(.msgrcv, nth: 2, errno: 0, delayNanoseconds: holdNanoseconds))
      let clock = ContinuousClock()
      let started = clock.now
      let task = BoundedTask {
        try await FaultPlan.$current.withValue(plan) {
          await run(onExecutor: onExecutor) { () async throws(IPCError) in
            _ = try await queue.receive(type: 1)
          }
        }.get()
      }
      try await waitUntil("the waiting msgrcv is held back") { plan.calls(.msgrcv) >= 2 }
      task.cancel()
      // The held call began after `started`: cancelled before `started + hold`, the signal
      // surely came while the thread was held outside the kernel.
      heldWhenCancelled = clock.now - started < .nanoseconds(holdNanoseconds)
      let outcome = try await task.outcome("the cancelled receive")
      guard case .failure(let error) = outcome else {
        Issue.record("a cancelled receive received")
        return
      }
      #expect((error as? IPCError)?.isCancellation == true, "\(error)")
      #expect(plan.calls(.msgrcv) == 2, "the wait was made, not skipped")
    }
    #expect(heldWhenCancelled, "no try cancelled the receive while its msgrcv was held back")
  }
}
