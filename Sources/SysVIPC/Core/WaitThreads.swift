import Synchronization
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// Waits that cost nothing while they wait. A wait blocks in the kernel with no timeout (or, for
// semtimedop, the kernel's own); it is ended early by the wait signal (WaitSignal.swift), sent
// by the thread that cancels its task or by one timer thread at its deadline. The async forms
// run their waits on pooled threads (WaitThreadPool), never on Swift's cooperative threads.

/// Nanoseconds on the monotonic clock (the clock of ``Deadline``).
@inline(__always)
private func monotonicNow() -> Int64 { system_monotonicNanoseconds() }

// MARK: Ending a wait early

/// One wait that may be ended early: by ``stop()`` (task cancellation) or at a deadline kept by
/// the ``WaitTimer``. The waiting thread attaches itself for the time it blocks; a signal is sent
/// only to an attached thread, and detaching waits for a signal being sent, so that none reaches
/// a thread that has moved on.
///
/// Attaching and detaching are one atomic store and one compare-exchange on the ticket, with no
/// lock and no shared table unless a deadline or a stop involves the timer: they run just before
/// and just after the thread sleeps, and after a sleep every cache line touched costs (the
/// wake-up latency of a wait is measured in BENCHMARKS.md).
package final class WaitTicket: @unchecked Sendable {
  private let stopped = Atomic<Bool>(false)
  /// The attached thread (``system_threadSelfWord()``); ``detached`` when none, ``signalling``
  /// while a signal is being sent to it (the sender holds the thread's word then).
  private let waiter = Atomic<UInt>(WaitTicket.detached)
  /// Whether the timer's table may hold this ticket (set under the timer's lock).
  fileprivate let scheduled = Atomic<Bool>(false)
  // Guarded by WaitTimer.shared's lock.
  fileprivate var alarm = Int64.max
  fileprivate var resendDelay: Int64 = 1_000_000

  private static let detached: UInt = 0
  private static let signalling: UInt = 1

  init() {}

  /// Whether the wait was asked to stop (its task was cancelled).
  var isStopped: Bool { stopped.load(ordering: .sequentiallyConsistent) }

  /// Ends the wait: at once if its thread blocks now, else before it blocks.
  ///
  /// The stop is stored, then the waiter read; the waiter stores itself, then reads the stop
  /// (``isStopped``, before each call): both sequentially consistent, so that at least one of
  /// them sees the other, and either the waiter does not block or it is signalled.
  func stop() {
    stopped.store(true, ordering: .sequentiallyConsistent)
    WaitTimer.shared.interrupt(self)
  }

  private var isAttached: Bool { waiter.load(ordering: .acquiring) != Self.detached }

  /// The calling thread is about to block: signals may reach it from now on.
  fileprivate func attachThisThread() {
    waiter.store(system_threadSelfWord(), ordering: .sequentiallyConsistent)
  }

  /// No signal reaches the thread after this returns: one being sent now is waited for.
  fileprivate func detachThisThread() {
    let me = system_threadSelfWord()
    while !waiter.compareExchange(
      expected: me, desired: Self.detached, ordering: .acquiringAndReleasing
    ).exchanged {
      // A sender holds the word for the length of one pthread_kill.
      system_yield()
    }
  }

  /// Sends `signal` to the attached thread; `false` when none is attached (or another sender
  /// is sending at this instant, which serves as well).
  fileprivate func signal(_ signal: Int32) -> Bool {
    let thread = waiter.load(ordering: .sequentiallyConsistent)
    if thread == Self.detached { return false }
    if thread == Self.signalling { return true }
    guard
      waiter.compareExchange(
        expected: thread, desired: Self.signalling, ordering: .acquiringAndReleasing
      ).exchanged
    else { return isAttached }
    system_threadKill(word: thread, signal)
    waiter.store(thread, ordering: .releasing)
    return true
  }
}

/// The one thread that sends the wait signal at deadlines, and sends it again to a thread that
/// has not left its wait yet: a signal that lands between the waiter's last check and its entry
/// into the kernel is lost, so the signal is repeated (after 1 ms, doubling to 16 ms) until the
/// waiter detaches. It sleeps on a condition variable while nothing is due: no polling.
final class WaitTimer: @unchecked Sendable {
  static let shared = WaitTimer()

  private let lock = ConditionLock()
  private let due = Condition()
  private var alarms: [ObjectIdentifier: WaitTicket] = [:]
  private var sleepsUntil = Int64.max
  private var running = false

  /// Attaches the calling thread to `ticket` for the time it blocks; with a deadline, the
  /// signal ends the wait then. Returns `false` when the timer thread cannot be started (the
  /// thread is not attached then).
  func attach(_ ticket: WaitTicket, deadline: Int64?) -> Bool {
    ticket.attachThisThread()
    guard let deadline else { return true }
    let scheduled = lock.withLock { schedule(ticket, at: deadline) }
    if !scheduled { ticket.detachThisThread() }
    return scheduled
  }

  /// Detaches the thread: no signal reaches it for this wait any more.
  func detach(_ ticket: WaitTicket) {
    ticket.detachThisThread()
    // A ticket the timer never saw (no deadline, not stopped) touches nothing shared. One that
    // a stop scheduled just after this check stays in the table until its alarm, when the timer
    // finds it detached and drops it.
    guard ticket.scheduled.load(ordering: .acquiring) else { return }
    lock.withLock {
      alarms[ObjectIdentifier(ticket)] = nil
      ticket.scheduled.store(false, ordering: .releasing)
    }
  }

  /// Signals `ticket`'s thread now if it is attached, and again later until it detaches.
  fileprivate func interrupt(_ ticket: WaitTicket) {
    lock.withLock {
      guard ticket.signal(WaitSignal.number) else { return }
      _ = schedule(ticket, at: monotonicNow() + ticket.resendDelay)
    }
  }

  /// Under the lock.
  private func schedule(_ ticket: WaitTicket, at time: Int64) -> Bool {
    ticket.alarm = time
    alarms[ObjectIdentifier(ticket)] = ticket
    ticket.scheduled.store(true, ordering: .releasing)
    if !running {
      running = startThread(stackSize: 64 * 1024) { self.run() }
      if !running {
        alarms[ObjectIdentifier(ticket)] = nil
        ticket.scheduled.store(false, ordering: .releasing)
        return false
      }
    }
    if time < sleepsUntil { due.signal() }
    return true
  }

  private func run() {
    var all = sigset_t()
    sigfillset(&all)
    system_threadSignalMask(SIG_SETMASK, &all, nil)
    lock.lock()
    while true {
      let now = monotonicNow()
      var next = Int64.max
      var gone: [ObjectIdentifier] = []
      for (key, ticket) in alarms {
        if ticket.alarm <= now {
          guard ticket.signal(WaitSignal.number) else {
            // Detached since it was scheduled: nothing more to send.
            ticket.scheduled.store(false, ordering: .releasing)
            gone.append(key)
            continue
          }
          ticket.alarm = now + ticket.resendDelay
          ticket.resendDelay = min(ticket.resendDelay * 2, 16_000_000)
        }
        next = min(next, ticket.alarm)
      }
      for key in gone { alarms[key] = nil }
      sleepsUntil = next
      if next == .max { due.wait(lock) } else { due.wait(lock, untilNanoseconds: next) }
      sleepsUntil = .max
    }
  }
}

/// Blocks in `call`, a System V wait, until it returns; ends it early at `deadline` (unless the
/// kernel keeps the deadline itself: `deadlineInKernel`) and when `ticket` is stopped.
///
/// EINTR is retried by ``retryingInterrupts(_:deadline:_:)`` as everywhere; before each try
/// the stop and the deadline are checked, so the signal that ended the call ends the wait.
///
/// - Parameters:
///   - wouldBlock: the errno thrown (as ``IPCError/system(_:_:subject:)``) when the deadline
///     passed; the caller words the "timed out" error.
///   - call: gets the nanoseconds left before `deadline` (-1 without one).
/// - Throws: the cancellation error when `ticket` was stopped; `.system` EAGAIN when the timer
///   thread cannot be started.
func waitInKernel<R: FixedWidthInteger>(
  _ op: IPCOperation, deadline: Deadline?, deadlineInKernel: Bool = false,
  ticket: WaitTicket?, wouldBlock: Errno, _ call: (_ remainingNanoseconds: Int64) -> R
) throws(IPCError) -> R {
  let timer = deadlineInKernel ? nil : deadline
  guard ticket != nil || timer != nil else {
    return try retryingInterrupts(op, deadline: deadline) { call($0) }
  }
  let ticket = ticket ?? WaitTicket()
  let blocked = WaitSignal.unblockInThisThread()
  defer { WaitSignal.restore(blocked: blocked) }
  guard WaitTimer.shared.attach(ticket, deadline: timer?.uptimeNanoseconds) else {
    throw IPCError(
      .system, "\(op.subject): no thread to keep the deadline (pthread_create failed)",
      errno: .resourceTemporarilyUnavailable)
  }
  defer { WaitTimer.shared.detach(ticket) }
  do {
    // The first call is made even when the deadline has passed (a tiny timeout still tries
    // once); after an interruption, the deadline ends the wait.
    var calledOnce = false
    return try retryingInterrupts(op, deadline: deadline) { remaining in
      if ticket.isStopped {
        errno = ECANCELED
        return -1
      }
      if calledOnce && deadline != nil && remaining == 0 {
        errno = wouldBlock.rawValue
        return -1
      }
      calledOnce = true
      return call(remaining)
    }
  } catch  where error.errno == .canceled && ticket.isStopped {
    throw .cancelled(op.subject)
  }
}

// MARK: The threads

/// The threads that async waits block on: one per wait in flight, reused. The pool grows with
/// the waits in flight and shrinks when idle: a thread that found no work for
/// ``idleLifetimeNanoseconds`` ends. Idle threads sleep on a condition variable.
///
/// A thread per wait, not one for all: a System V wait cannot be multiplexed (no file
/// descriptor to poll), so one thread could only poll every object in turn, which costs CPU
/// and latency for each waiter (measured in BENCHMARKS.md); a blocked thread costs neither.
///
/// The same threads serve ``IPCWaitExecutor``: a job of a task that prefers it runs on an idle
/// thread of the pool, and a wait of that task blocks that very thread (``isWaitThread``), so
/// that the task runs on as soon as the kernel wakes the thread, with no hand-over.
final class WaitThreadPool: @unchecked Sendable {
  static let shared = WaitThreadPool()
  static let idleLifetimeNanoseconds: Int64 = 5_000_000_000
  /// Enough for a wait and its signal handler; a blocked thread touches a few pages of it.
  /// Jobs of ``IPCWaitExecutor`` run here too, so it is larger than a wait alone needs.
  static let stackSize = 1024 * 1024

  /// What a pool thread runs: a job of ``IPCWaitExecutor`` (a task that waits, or that prefers
  /// the executor), with the executor to run it on.
  struct Work: @unchecked Sendable {
    let job: UnownedJob
    let executor: UnownedTaskExecutor
  }

  private final class Worker: @unchecked Sendable {
    let wake = Condition()
    var work: Work?
  }

  private let lock = ConditionLock()
  private var idle: [Worker] = []

  #if ENABLE_MOCKING
    /// A test's fault plan: this pool starts every thread under it, and reuses none.
    private let plan: FaultPlan?

    init(plan: FaultPlan? = nil) { self.plan = plan }
  #else
    init() {}
  #endif

  /// Marks the pool's threads (a thread-specific value), so that a wait can tell that it runs
  /// on one and may block it. `nil` when `pthread_key_create` failed (the process had used all
  /// `PTHREAD_KEYS_MAX` keys, 1,024 on Linux): no thread is marked then, and async waits fail
  /// with `.system` EAGAIN, as they do when no thread can be started, rather than block a
  /// thread that may be a cooperative one.
  private static let marker: pthread_key_t? = system_threadKeyCreate()

  /// Whether the calling thread is one of the pool's (then a wait may block it).
  static var isWaitThread: Bool {
    guard let marker else { return false }
    return system_threadGetSpecific(marker) != nil
  }

  /// Runs `work` on a pool thread (an idle one, else a new one). Returns `false` when no thread
  /// could be started (`pthread_create` failed): the work did not run.
  func run(_ work: Work) -> Bool {
    #if ENABLE_MOCKING
      // Under a test's fault plan every job asks for a new thread, so that pthread_create can
      // be made to fail whatever the pool holds.
      if let plan {
        let worker = Worker()
        worker.work = work
        return FaultPlan.$current.withValue(plan) {
          startThread(stackSize: Self.stackSize) { self.serve(worker) }
        }
      }
    #endif
    lock.lock()
    if let worker = idle.popLast() {
      worker.work = work
      worker.wake.signal()
      lock.unlock()
      return true
    }
    lock.unlock()
    let worker = Worker()
    worker.work = work
    return startThread(stackSize: Self.stackSize) { self.serve(worker) }
  }

  private func serve(_ worker: Worker) {
    WaitSignal.maskForWaitThread()
    if let marker = Self.marker {
      system_threadSetSpecific(marker, UnsafeRawPointer(bitPattern: 1))
    }
    lock.lock()
    while true {
      if let work = worker.work {
        worker.work = nil
        lock.unlock()
        work.job.runSynchronously(on: work.executor)
        lock.lock()
        // The most recently idle thread is reused first, so the others can expire.
        idle.append(worker)
        continue
      }
      let expiry = monotonicNow() + Self.idleLifetimeNanoseconds
      while worker.work == nil && monotonicNow() < expiry {
        worker.wake.wait(lock, untilNanoseconds: expiry)
      }
      if worker.work == nil {
        idle.removeAll { $0 === worker }
        lock.unlock()
        return
      }
    }
  }
}

/// Starts a detached thread running `body`; `false` when `pthread_create` failed.
func startThread(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Bool {
  system_threadCreate(stackSize: stackSize, body) == 0
}

// MARK: Locks

/// A pthread mutex, for use with ``Condition`` (Synchronization has no condition variable).
final class ConditionLock: @unchecked Sendable {
  fileprivate let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  init() { system_mutexInit(mutex) }
  deinit {
    system_mutexDestroy(mutex)
    mutex.deallocate()
  }
  func lock() { system_mutexLock(mutex) }
  func unlock() { system_mutexUnlock(mutex) }
  func withLock<R>(_ body: () -> R) -> R {
    lock()
    defer { unlock() }
    return body()
  }
}

/// A condition variable on the monotonic clock.
final class Condition: @unchecked Sendable {
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  init() { system_conditionInit(condition) }
  deinit {
    system_conditionDestroy(condition)
    condition.deallocate()
  }
  func signal() { system_conditionSignal(condition) }
  func wait(_ lock: ConditionLock) { system_conditionWait(condition, lock.mutex) }
  /// Waits at most until `deadline` (monotonic nanoseconds); may return early.
  func wait(_ lock: ConditionLock, untilNanoseconds deadline: Int64) {
    system_conditionWait(condition, lock.mutex, untilNanoseconds: deadline)
  }
}
