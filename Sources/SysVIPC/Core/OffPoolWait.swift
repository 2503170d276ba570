import Synchronization
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Runs `wait`, a blocking wait, on a thread of ``WaitThreadPool`` and suspends the task until
/// it ends, so that it never blocks one of Swift concurrency's threads. Cancelling the task stops
/// the ticket that `wait` gets, which ends a wait blocked in the kernel at once (see
/// ``waitInKernel(_:deadline:deadlineInKernel:ticket:wouldBlock:_:)``).
///
/// A task that runs on a pool thread already (it prefers ``IPCWaitExecutor``) waits right there:
/// blocking that thread is what it is for, and the task runs on the moment the kernel wakes it.
///
/// (swift-subprocess waits for all its children on one thread, because `waitid` on a
/// `pidfd` can be multiplexed; a System V wait cannot, so each wait has a thread of its own while
/// it waits, taken from the pool.)
///
/// - Throws: what `wait` throws; ``IPCError/Kind/system`` (EAGAIN) when no thread can be had,
///   rather than blocking the caller's cooperative thread.
func waitOffPool<Value: Sendable>(
  _ what: String, _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  let ticket = WaitTicket()
  if WaitThreadPool.isWaitThread {
    let result: Result<Value, IPCError> = await withTaskCancellationHandler {
      Result { () throws(IPCError) in try wait(ticket) }
    } onCancel: {
      ticket.stop()
    }
    return try result.get()
  }
  #if ENABLE_MOCKING
    // The pool's thread makes the calls: it gets the task's fault plan (a task-local value,
    // which a thread outside the task does not see by itself).
    let plan = FaultPlan.current
  #endif
  let result: Result<Value, IPCError> = await withTaskCancellationHandler {
    await withUnsafeContinuation {
      (continuation: UnsafeContinuation<Result<Value, IPCError>, Never>) in
      let started = WaitThreadPool.shared.run(
        .wait {
          #if ENABLE_MOCKING
            let result = FaultPlan.$current.withValue(plan) {
              Result { () throws(IPCError) in try wait(ticket) }
            }
          #else
            let result = Result { () throws(IPCError) in try wait(ticket) }
          #endif
          continuation.resume(returning: result)
        })
      if !started {
        continuation.resume(
          returning: .failure(
            IPCError(
              .system,
              "\(what): no thread to wait on (pthread_create failed: thread or memory "
                + "limit reached)", errno: .resourceTemporarilyUnavailable)))
      }
    }
  } onCancel: {
    ticket.stop()
  }
  return try result.get()
}

/// ``waitOffPool(_:_:)`` for the package's other targets (SysVIPCChannel): their blocking waits
/// get the same pool, the same cancellation (the ticket, passed to
/// ``packageSemaphoreOperation(id:index:delta:flags:timeoutNanoseconds:stop:)``) and the same
/// executor.
package func packageWaitOffPool<Value: Sendable>(
  _ what: String, _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  try await waitOffPool(what, wait)
}
