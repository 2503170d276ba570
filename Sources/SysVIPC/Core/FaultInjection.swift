#if ENABLE_MOCKING
  import Synchronization

  #if canImport(Glibc)
    import Glibc
  #elseif canImport(Musl)
    import Musl
  #elseif canImport(Darwin)
    import Darwin
  #endif

  /// Test-only fault injection (debug builds, `ENABLE_MOCKING`): which calls of the `system_*`
  /// layer (Core/Syscalls.swift) fail, and with which errno. Tests use it through
  /// `@testable import SysVIPC`:
  ///
  ///     let plan = FaultPlan(.init(.semctl, errno: ENOMEM))          // the 1st semctl fails
  ///     let plan = FaultPlan(.init(.semop, errno: EINTR, times: 3))  // interrupted 3 times
  ///     try FaultPlan.$current.withValue(plan) { try semaphore.release() }
  ///
  /// The plan is a task-local value, so tests running at the same time in one process do not
  /// see each other's faults; calls made on other threads (async waits) do not see it either.
  @usableFromInline
  final class FaultPlan: Sendable {
    /// One planned failure: calls `nth ..< nth + times` of `call` (1-based, counted from when
    /// the plan is installed) fail with `errno`, each after sleeping `delayNanoseconds` (to
    /// stand for a signal that interrupts a wait some time in). With `errno` 0 they do not fail:
    /// they are made after the delay (a thread held just before it enters the kernel).
    struct Fault: Sendable {
      var call: SystemCallName
      var nth: Int
      var errno: Int32
      var times: Int
      var delayNanoseconds: Int64

      init(
        _ call: SystemCallName, nth: Int = 1, errno: Int32, times: Int = 1,
        delayNanoseconds: Int64 = 0
      ) {
        self.call = call
        self.nth = nth
        self.errno = errno
        self.times = times
        self.delayNanoseconds = delayNanoseconds
      }
    }

    @usableFromInline
    @TaskLocal static var current: FaultPlan?

    private let faults: [Fault]
    // A pthread mutex, not Synchronization's Mutex: the pool's threads and a task's children
    // count calls at the same time, and ThreadSanitizer sees a pthread mutex (Mutex's futex is
    // inside the uninstrumented standard library, so TSan would report the counts as a race).
    private let lock = ConditionLock()
    private nonisolated(unsafe) var counts: [SystemCallName: Int] = [:]
    private nonisolated(unsafe) var notes: (ids: [Int32], timeouts: [Int64]) = ([], [])

    init(_ faults: Fault...) { self.faults = faults }
    init(_ faults: [Fault]) { self.faults = faults }

    /// How many calls of `call` were made (failed ones included) since the plan was installed.
    func calls(_ call: SystemCallName) -> Int { lock.withLock { counts[call, default: 0] } }

    /// The ids that *get calls returned while the plan was installed.
    var ids: [Int32] { lock.withLock { notes.ids } }
    /// The timeouts (nanoseconds) that semtimedop calls were given, in order.
    var timeouts: [Int64] { lock.withLock { notes.timeouts } }

    func note(id: Int32) { lock.withLock { notes.ids.append(id) } }
    func note(timeout: Int64) { lock.withLock { notes.timeouts.append(timeout) } }

    /// Counts a call; the errno it is to fail with, if it is planned to.
    @usableFromInline
    func fault(for call: SystemCallName) -> Int32? {
      let n = lock.withLock {
        counts[call, default: 0] += 1
        return counts[call]!
      }
      guard
        let fault = faults.first(where: {
          $0.call == call && (n - $0.nth) >= 0 && n - $0.nth < $0.times
        })
      else { return nil }
      if fault.delayNanoseconds > 0 { system_sleep(fault.delayNanoseconds) }
      return fault.errno
    }
  }
#endif
