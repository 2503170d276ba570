import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The semop path shared by ``Semaphore`` and ``SemaphoreSet``: argument checks, timeouts,
/// EINTR, and the "busy" message.
@usableFromInline
enum SemaphoreCall {
  /// The largest magnitude of one operation: `sembuf.sem_op` is a C `short`.
  static let maxDelta = Int(Int16.max)

  /// Checks a delta (Python takes its magnitude) and returns it as a `short`.
  @inline(__always)
  static func magnitude(_ delta: Int, _ call: StaticString) throws(IPCError) -> Int16 {
    let magnitude = delta.magnitude
    guard magnitude >= 1, magnitude <= UInt(maxDelta) else {
      throw .outOfRange("\(call): delta \(delta) is outside 1...\(maxDelta)")
    }
    return Int16(magnitude)
  }

  /// The `sem_flg` bits for the local `block` and `undo` settings (inlinable: the inlined
  /// fast path of ``Semaphore/acquire(timeout:delta:)-3v0us`` uses them).
  @inlinable
  static func flags(block: Bool, undo: Bool) -> Int16 {
    Int16(truncatingIfNeeded: (block ? 0 : IPC_NOWAIT) | (undo ? SEM_UNDO : 0))
  }

  /// Performs `ops` atomically (`semop`, or `semtimedop` for a timeout).
  ///
  /// - Parameters:
  ///   - timeout: `nil` waits as the operations' flags say; `0` never waits; a positive timeout
  ///     waits at most that long, measured on the monotonic clock across signal interruptions
  ///     (in the kernel with `semtimedop`; where there is none, `semop` ended by the wait signal
  ///     at the deadline).
  ///   - ticket: ends the wait early when stopped (an async wait's cancellation).
  @inline(__always)
  static func perform(
    id: Int32, _ ops: UnsafeMutableBufferPointer<csysvipc_sembuf>, timeoutNanoseconds: Int64?,
    ticket: WaitTicket? = nil, call: StaticString
  ) throws(IPCError) {
    let op = IPCOperation(call, .semaphore, id: id)
    if timeoutNanoseconds == 0 {
      for i in ops.indices { ops[i].flags |= Int16(IPC_NOWAIT) }
    }
    guard let timeout = timeoutNanoseconds, timeout > 0 else {
      _ = try waitInKernel(
        op, deadline: nil, ticket: ticket, wouldBlock: .resourceTemporarilyUnavailable
      ) {
        _ in system_semop(id, ops)
      }
      return
    }
    let deadline = Deadline(afterNanoseconds: timeout)
    let inKernel = systemHasSemtimedop
    do {
      _ = try waitInKernel(
        op, deadline: deadline, deadlineInKernel: inKernel, ticket: ticket,
        wouldBlock: .resourceTemporarilyUnavailable
      ) { remaining in
        inKernel ? system_semtimedop(id, ops, remaining) : system_semop(id, ops)
      }
    } catch let error
      where error.kind == .busy && !error.isCancellation
      && !ops.contains(where: { Int32($0.flags) & IPC_NOWAIT != 0 })
    {
      // EAGAIN with only waiting operations: the time ran out (with an IPC_NOWAIT operation it
      // may be that operation's refusal, which the kernel reports the same way).
      throw .timedOut(op, nanoseconds: timeout, errno: error.errno)
    }
  }

  /// A `semctl` command that returns a non-negative number (GETVAL, GETPID, GETNCNT, GETZCNT).
  static func control(
    _ call: StaticString, id: Int32, _ body: () -> Int32
  ) throws(IPCError) -> Int32 {
    try retryingInterrupts(IPCOperation(call, .semaphore, id: id)) { _ in body() }
  }

  /// The kernel's largest semaphore value (`SEMVMX`), read once.
  static let maxValue: Int = {
    if let limits = systemLimits(), limits.semvmx > 0 { return Int(limits.semvmx) }
    return 32767
  }()

  /// Checks a value for SETVAL / SETALL.
  static func checkedValue(_ value: Int, _ call: StaticString) throws(IPCError) -> Int32 {
    guard (0...maxValue).contains(value) else {
      throw .outOfRange("\(call): value \(value) is outside 0...\(maxValue)")
    }
    return Int32(value)
  }
}
