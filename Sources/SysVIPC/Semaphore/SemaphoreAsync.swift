import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// The async forms: the same waits, on a thread of their own, so that they never block Swift's
// cooperative threads; a cancelled task returns within about 10 ms with an error for which
// `IPCError.isCancellation` is true, and changes nothing.

extension SemaphoreCall {
  /// ``perform(id:_:timeoutNanoseconds:call:)`` for async callers.
  static func performAsync(
    id: Int32, _ operations: [csysvipc_sembuf], timeoutNanoseconds: Int64?, call: StaticString
  ) async throws(IPCError) {
    let neverWaits = operations.allSatisfy { Int32($0.flags) & IPC_NOWAIT != 0 }
    if timeoutNanoseconds == 0 || neverWaits {
      var copy = operations
      try copy.withUnsafeMutableBufferPointer { (buffer) throws(IPCError) in
        try perform(id: id, buffer, timeoutNanoseconds: timeoutNanoseconds, call: call)
      }
      return
    }
    let deadline = timeoutNanoseconds.map(Deadline.init(afterNanoseconds:))
    let subject = IPCOperation(call, .semaphore, id: id).subject
    try await waitOffPool(
      subject, deadline: deadline,
      timedOut: {
        let seconds = Double(timeoutNanoseconds ?? 0) / 1e9
        return IPCError(
          .busy, "\(subject): timed out after \(seconds) s", errno: .resourceTemporarilyUnavailable)
      }
    ) { slice, _ in
      var copy = operations
      do throws(IPCError) {
        try copy.withUnsafeMutableBufferPointer { (buffer) throws(IPCError) in
          try perform(id: id, buffer, timeoutNanoseconds: slice, call: call)
        }
        return .done(())
      } catch  where error.kind == .busy && error.errno?.rawValue == EAGAIN {
        return .again
      } catch {
        return .failed(error)
      }
    }
  }
}

extension Semaphore {
  /// ``acquire(timeout:delta:)-3v0us`` for async code (`semtimedop` in slices): waits without
  /// blocking a Swift concurrency thread, and honours task cancellation (the value is then
  /// unchanged and the error's ``IPCError/isCancellation`` is `true`).
  public func acquire(timeout: Duration? = nil, delta: Int = 1) async throws(IPCError) {
    let magnitude = try SemaphoreCall.magnitude(delta, "semop")
    try await operateAsync(-magnitude, timeout: timeout)
  }

  /// ``waitForZero(timeout:)-1nc8e`` for async code (`semop` with 0, in `semtimedop` slices), as
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
