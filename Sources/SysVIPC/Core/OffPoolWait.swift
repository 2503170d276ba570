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
/// The task itself moves to a pool thread (it prefers ``IPCWaitExecutor`` for the wait) and waits
/// there; when the wait ends it goes back to where it ran. A task that runs on a pool thread
/// already (it prefers the executor itself) waits right there, and runs on there the moment the
/// kernel wakes it. No continuation is resumed from outside the task: the moves are the
/// runtime's own.
///
/// (swift-subprocess waits for all its children on one thread, because `waitid` on a
/// `pidfd` can be multiplexed; a System V wait cannot, so each wait has a thread of its own while
/// it waits, taken from the pool.)
///
/// - Throws: what `wait` throws; ``IPCError/Kind/system`` (EAGAIN) when no thread can be had,
///   rather than blocking the caller's cooperative thread.
///
/// - Parameter what: names the wait in the error when no thread can be had (made only then).
func waitOffPool<Value: Sendable>(
  _ what: @autoclosure @escaping @Sendable () -> String,
  _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  if WaitThreadPool.isWaitThread { return try await waitHere(wait) }
  var executor = IPCWaitExecutor.shared
  #if ENABLE_MOCKING
    // Under a test's fault plan the threads come from a pool of the plan's own, which starts
    // them under the plan (the executor's enqueue runs outside the task, where the plan's
    // task-local value is not seen), so that pthread_create can be made to fail.
    if let plan = FaultPlan.current { executor = IPCWaitExecutor(pool: WaitThreadPool(plan: plan)) }
  #endif
  return try await withTaskExecutorPreference(executor) { () async throws(IPCError) -> Value in
    try await waitOnAPoolThread(what, wait)
  }
}

/// The wait, in a task that prefers ``IPCWaitExecutor``: `@concurrent`, so that it leaves an
/// actor that called ``waitOffPool(_:_:)`` for the executor's thread.
@concurrent
private func waitOnAPoolThread<Value: Sendable>(
  _ what: @escaping @Sendable () -> String,
  _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  // Not on a pool thread: the executor could start none, and ran the job on Swift's global
  // executor, whose thread must not block.
  guard WaitThreadPool.isWaitThread else {
    throw IPCError(
      .system,
      "\(what()): no thread to wait on (pthread_create failed: thread or memory limit reached)",
      errno: .resourceTemporarilyUnavailable)
  }
  return try await waitHere(wait)
}

/// Runs `wait` on this thread (a pool thread), ended early by the task's cancellation.
private func waitHere<Value: Sendable>(
  _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  let ticket = WaitTicket()
  let result: Result<Value, IPCError> = await withTaskCancellationHandler {
    Result { () throws(IPCError) in try wait(ticket) }
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
  _ what: @autoclosure @escaping @Sendable () -> String,
  _ wait: @escaping @Sendable (WaitTicket) throws(IPCError) -> Value
) async throws(IPCError) -> Value {
  try await waitOffPool(what(), wait)
}
