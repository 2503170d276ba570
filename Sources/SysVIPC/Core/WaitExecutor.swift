// A task executor whose threads may block in System V waits: the wait pool's (WaitThreads.swift).
// A task that prefers it waits on the thread it runs on, and runs on as soon as the kernel wakes
// that thread; without it, an async wait blocks a pool thread and then hands the task back to a
// cooperative thread, which costs a second wake-up (measured in BENCHMARKS.md).

/// A task executor for loops that wait on System V objects and must react at once: the async
/// waits of a task that prefers it (`withTaskExecutorPreference`) block the thread the task runs
/// on, and the task runs on the moment the kernel wakes that thread: a message or a release is
/// seen as fast as by a blocking call in C.
///
/// ```swift
/// await withTaskExecutorPreference(IPCWaitExecutor.shared) {
///   for try await (message, type) in queue.messages() {
///     handle(message, type)
///   }
/// }
/// ```
///
/// Without it, an async wait blocks a thread of the library's wait pool while Swift's
/// cooperative threads run other work; when the wait ends, the task is handed back to a
/// cooperative thread, and that hand-over costs a second wake-up (about as long as the kernel's
/// own). With it, the task's code runs on the pool's threads themselves:
///
/// - Each job runs on an idle thread of the pool (a new one when none is idle); a thread blocked
///   in a wait is not idle, so a child task that inherits the preference never waits behind it.
///   The pool keeps a thread per job running or wait in flight, and ends threads idle for 5 s.
/// - Cancellation, timeouts and errors are those of every async wait (see <doc:AsyncAwait>).
/// - The threads have 1 MiB of stack and block every signal but ``IPCSystem/waitSignal``: run
///   wait loops here, not deep recursion or work that needs signals.
/// - When no thread can be started (a thread or memory limit), a job runs on Swift's global
///   concurrent executor instead, and its waits take the hand-over path (or fail with
///   ``IPCError/Kind/system`` EAGAIN, as every async wait does when no thread can be had).
public final class IPCWaitExecutor: TaskExecutor, Sendable {
  /// The one executor: every task that prefers it shares the wait pool's threads.
  public static let shared = IPCWaitExecutor(pool: .shared)

  private let pool: WaitThreadPool

  /// An executor on `pool` (tests give it a pool whose threads fail to start).
  init(pool: WaitThreadPool) { self.pool = pool }

  /// Runs `job` on an idle thread of the wait pool, or a new one.
  public func enqueue(_ job: consuming ExecutorJob) {
    let unowned = UnownedJob(job)
    if !pool.run(.init(job: unowned, executor: asUnownedTaskExecutor())) {
      // No thread: the job must still run (its task would hang otherwise).
      globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
    }
  }
}
