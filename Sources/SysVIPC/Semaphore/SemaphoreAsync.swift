import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// The async forms: the same waits, blocked in the kernel on a pooled thread (waitOffPool), so
// that they never block Swift's cooperative threads; a cancelled task's wait is ended by the
// wait signal at once, changes nothing, and throws an error for which
// `IPCError.isCancellation` is true.

extension SemaphoreCall {
  /// ``perform(id:_:timeoutNanoseconds:ticket:call:)`` for async callers: first one try that
  /// does not wait, on the caller's thread; only when the operations must wait, the wait on a
  /// pooled thread.
  static func performAsync(
    id: Int32, _ operations: [csysvipc_sembuf], timeoutNanoseconds: Int64?, call: StaticString
  ) async throws(IPCError) {
    var copy = operations
    let neverWaits = operations.allSatisfy { Int32($0.flags) & IPC_NOWAIT != 0 }
    do {
      // Without waiting: IPC_NOWAIT on every operation (either all happen or none).
      try copy.withUnsafeMutableBufferPointer { (buffer) throws(IPCError) in
        try perform(id: id, buffer, timeoutNanoseconds: 0, call: call)
      }
      return
    } catch  where error.kind == .busy && !neverWaits && timeoutNanoseconds != 0 {
      // Must wait (or an IPC_NOWAIT operation refuses: the wait below says so at once).
    }
    try await waitOffPool(IPCOperation(call, .semaphore, id: id).subject) {
      (ticket) throws(IPCError) in
      var copy = operations
      try copy.withUnsafeMutableBufferPointer { (buffer) throws(IPCError) in
        try perform(
          id: id, buffer, timeoutNanoseconds: timeoutNanoseconds, ticket: ticket, call: call)
      }
    }
  }
}

extension Semaphore {
  /// ``acquire(timeout:delta:)-3v0us`` for async code (`semop`, or `semtimedop` with a timeout): waits without
  /// blocking a Swift concurrency thread, and honours task cancellation (the value is then
  /// unchanged and the error's ``IPCError/isCancellation`` is `true`).
  public func acquire(timeout: Duration? = nil, delta: Int = 1) async throws(IPCError) {
    let magnitude = try SemaphoreCall.magnitude(delta, "semop")
    try await operateAsync(-magnitude, timeout: timeout)
  }

  /// ``waitForZero(timeout:)-1nc8e`` for async code (`semop` with 0), as
  /// ``acquire(timeout:delta:)-449lg``.
  public func waitForZero(timeout: Duration? = nil) async throws(IPCError) {
    try await operateAsync(0, timeout: timeout)
  }

  /// ``withAcquired(timeout:delta:_:)-7asn6`` for async code: acquires (`semop`) without
  /// blocking a thread, runs `body`, and releases, also when `body` throws.
  public func withAcquired<R: Sendable>(
    timeout: Duration? = nil, delta: Int = 1, _ body: () async throws -> R
  ) async throws -> R {
    try await acquire(timeout: timeout, delta: delta)
    let result: R
    do {
      result = try await body()
    } catch {
      try? release(delta: delta)
      throw error
    }
    try release(delta: delta)
    return result
  }

  private func operateAsync(_ delta: Int16, timeout: Duration?) async throws(IPCError) {
    let nanoseconds = try timeoutNanoseconds(timeout, "semop")
    let op = csysvipc_sembuf(
      number: 0, operation: delta, flags: SemaphoreCall.flags(block: block, undo: undo))
    try await SemaphoreCall.performAsync(
      id: id, [op], timeoutNanoseconds: nanoseconds, call: "semop")
  }
}

extension SemaphoreSet {
  /// ``apply(_:timeout:)-4bsy0`` for async code (`semop`/`semtimedop`): waits without blocking
  /// a Swift concurrency thread and honours task cancellation (nothing is changed then).
  public func apply(_ operations: [Operation], timeout: Duration? = nil) async throws(IPCError) {
    let nanoseconds = try timeoutNanoseconds(timeout, "semop")
    let buffers = try withOperations(operations) { Array($0) }
    try await SemaphoreCall.performAsync(
      id: id, buffers, timeoutNanoseconds: nanoseconds, call: "semop")
  }
}
