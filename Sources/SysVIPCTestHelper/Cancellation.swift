import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Starts `wait` in a task, cancels the task once `waiters()` shows it waiting in the kernel, and
/// reports how long the task took to end after the cancel (`cancelMs`) and how it ended. Timed in
/// this process, away from the test runner's busy thread pool.
func measureCancellation(
  waiters: () throws -> Int, _ wait: @escaping @Sendable () async throws -> Void
)
  throws
{
  let endedAt = Atomic<Int64>(0)
  let outcome = Mutex<String>("")
  let task = Task {
    do {
      try await wait()
      outcome.withLock { $0 = "completed" }
    } catch let error as IPCError {
      outcome.withLock { $0 = error.isCancellation ? "cancelled" : "error \(error)" }
    } catch {
      outcome.withLock { $0 = "error \(error)" }
    }
    endedAt.store(nanoseconds(), ordering: .releasing)
  }
  let deadline = nanoseconds() + 30_000_000_000
  while try waiters() < 1 {
    guard nanoseconds() < deadline else { fail("the task never waited") }
    usleep(1000)
  }
  let cancelledAt = nanoseconds()
  task.cancel()
  while endedAt.load(ordering: .acquiring) == 0 {
    guard nanoseconds() < deadline else { fail("the cancelled task never ended") }
    usleep(100)
  }
  report("outcome", outcome.withLock { $0 })
  report("cancelMs", String(Double(endedAt.load(ordering: .acquiring) - cancelledAt) / 1e6))
}

private func nanoseconds() -> Int64 { Int64(monotonicSeconds() * 1e9) }
