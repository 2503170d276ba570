import Synchronization
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// What one attempt of a wait achieved.
enum WaitAttempt<Value: Sendable>: Sendable {
  case done(Value)
  case failed(IPCError)
  /// Not yet: try again (the attempt already waited up to its slice).
  case again
}

/// How long one attempt may block before cancellation is checked again. Cancellation is
/// honoured within about this time.
let cancellationSliceNanoseconds: Int64 = 10_000_000

/// Runs a blocking wait on a thread of its own, in slices of at most
/// ``cancellationSliceNanoseconds``, so that it never blocks one of Swift concurrency's threads
/// and notices task cancellation between slices (as swift-subprocess does for `waitid`).
///
/// - Parameters:
///   - what: names the operation for the cancellation error.
///   - deadline: the end of a timed wait; at it the last attempt's `.again` becomes `timedOut`.
///   - timedOut: the error for an expired deadline.
///   - attempt: one try that may block for at most the nanoseconds it is given; it also gets
///     the number of tries before it (0 for the first), to grow a polling interval.
func waitOffPool<Value: Sendable>(
  _ what: @escaping @autoclosure @Sendable () -> String, deadline: Deadline?,
  timedOut: @escaping @Sendable () -> IPCError,
  _ attempt: @escaping @Sendable (_ sliceNanoseconds: Int64, _ round: Int) -> WaitAttempt<Value>
) async throws(IPCError) -> Value {
  let cancelled = CancellationFlag()
  let result: Result<Value, IPCError> = await withTaskCancellationHandler {
    await withCheckedContinuation {
      (continuation: CheckedContinuation<Result<Value, IPCError>, Never>) in
      startThread {
        var round = 0
        while true {
          if cancelled.isSet {
            continuation.resume(returning: .failure(.cancelled(what())))
            return
          }
          var slice = cancellationSliceNanoseconds
          if let deadline { slice = min(slice, deadline.remainingNanoseconds) }
          defer { round += 1 }
          switch attempt(slice, round) {
          case .done(let value):
            continuation.resume(returning: .success(value))
            return
          case .failed(let error):
            continuation.resume(returning: .failure(error))
            return
          case .again:
            if let deadline, deadline.hasPassed {
              continuation.resume(returning: .failure(timedOut()))
              return
            }
          }
        }
      }
    }
  } onCancel: {
    cancelled.set()
  }
  return try result.get()
}

private final class CancellationFlag: Sendable {
  private let flag = Atomic<Bool>(false)
  var isSet: Bool { flag.load(ordering: .acquiring) }
  func set() { flag.store(true, ordering: .releasing) }
}

/// Starts a detached thread running `body`.
private func startThread(_ body: @escaping @Sendable () -> Void) {
  final class Box: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
  }
  let box = Unmanaged.passRetained(Box(body)).toOpaque()
  #if canImport(Glibc)
    var thread = pthread_t()
  #else
    var thread: pthread_t? = nil
  #endif
  let rc = pthread_create(
    &thread, nil,
    { raw in
      #if canImport(Glibc) || canImport(Musl)
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
      #else
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
      #endif
      box.body()
      return nil
    }, box)
  if rc == 0 {
    pthread_detach(thread)
  } else {
    // No thread to be had: run the wait here rather than lose it.
    Unmanaged<Box>.fromOpaque(box).takeRetainedValue().body()
  }
}
