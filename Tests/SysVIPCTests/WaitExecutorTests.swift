import Synchronization
import SysVIPCChannel
import SystemPackage
import Testing

@testable import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The calling thread's kernel id, from /proc/thread-self: a system call each time (glibc
/// declares `pthread_self` const, so the optimizer may move it across a suspension).
private func currentThread() -> String {
  var buffer = [CChar](repeating: 0, count: 64)
  let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
  return count > 0
    ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
}

/// IPCWaitExecutor (issue 12): a task that prefers it waits on the thread it runs on and runs on
/// there when the kernel wakes it; child tasks never wait behind a blocked thread; without a
/// thread it still runs. (Timeouts, removal and signal storms in this form: WaitTests' "executor"
/// cases, with processes; cancellation: WaitTests.cancellingAnyAsyncWaitEndsItAndChangesNothing.)
@Suite("Waits: IPCWaitExecutor")
struct WaitExecutorTests {
  /// On the executor, a receive blocks the task's own thread (a pool thread) and the task runs on
  /// there after the message arrives: no hand-over. Without it the task resumes on a cooperative
  /// thread, never a pool thread: the hand-over that the executor saves.
  @Test func aTaskOnTheExecutorRunsOnWhereItWaited() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    // A plan without faults counts the calls: the second msgrcv is the wait (the first, the
    // try that found nothing).
    let plan = FaultPlan()
    let waitingThread = Mutex<String?>(nil)
    let onExecutor = Task {
      try await FaultPlan.$current.withValue(plan) {
        try await withTaskExecutorPreference(IPCWaitExecutor.shared) {
          let before = (currentThread(), WaitThreadPool.isWaitThread)
          waitingThread.withLock { $0 = before.0 }
          let (message, _) = try await queue.receive(type: 1)
          return (before, (currentThread(), WaitThreadPool.isWaitThread), message)
        }
      }
    }
    // The task's own thread is the one that blocks in msgrcv.
    try await waitUntil("the task's thread blocks in msgrcv") {
      guard let thread = waitingThread.withLock({ $0 }) else { return false }
      return plan.calls(.msgrcv) >= 2
        && threadBlocked(getpid(), String(thread.split(separator: "/").last!), in: "msgrcv")
    }
    try await queue.send("one", type: 1)
    let (before, after, message) = try await onExecutor.value
    #expect(message == Array("one".utf8))
    #expect(plan.calls(.msgrcv) == 2, "one try, one wait")
    #expect(before.1 && after.1, "the task ran on the wait pool's threads")
    #expect(before.0 == after.0, "it ran on where it waited (no hand-over)")

    let second = FaultPlan()
    let elsewhere = Task {
      try await FaultPlan.$current.withValue(second) {
        let (message, _) = try await queue.receive(type: 2)
        return (WaitThreadPool.isWaitThread, message)
      }
    }
    try await waitUntil("the second receive waits") { second.calls(.msgrcv) >= 2 }
    try await queue.send("two", type: 2)
    let (onPoolThread, message2) = try await elsewhere.value
    #expect(message2 == Array("two".utf8))
    #expect(!onPoolThread, "without the executor the task is handed back to a cooperative thread")
  }

  /// Children inherit the preference; one blocked in a wait never holds up the others: 20
  /// receivers wait at once, and the parent, on the same executor, sends what they wait for.
  @Test func childTasksNeverWaitBehindABlockedThread() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    let plan = FaultPlan()
    let received = try await FaultPlan.$current.withValue(plan) {
      try await withTaskExecutorPreference(IPCWaitExecutor.shared) {
        try await withThrowingTaskGroup(of: Int.self) { group in
          for type in 1...20 {
            group.addTask {
              let (message, _) = try await queue.receive(type: type, timeout: .seconds(60))
              return Int(message[0])
            }
          }
          group.addTask {
            try await semaphore.acquire(timeout: .seconds(60))
            return 100
          }
          // One child is surely blocked in the kernel (the semaphore counts its waiter), and
          // every receiver has made its waiting call; the parent still runs.
          try await waitUntil("the waits have begun") {
            try semaphore.waitingForNonzero == 1 && plan.calls(.msgrcv) >= 40
          }
          for type in 1...20 { try await queue.send([UInt8(type)], type: type) }
          try semaphore.release()
          var all: [Int] = []
          for try await value in group { all.append(value) }
          return all.sorted()
        }
      }
    }
    #expect(received == Array(1...20) + [100])
  }

  /// The channel's async waits take the same path: on the executor a channel receive blocks
  /// the task's own thread, ends at once on cancellation (no slices), and consumes nothing.
  @Test func aChannelReceiveOnTheExecutorIsCancelledAtOnce() async throws {
    let channel = try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 16)
    defer { try? channel.remove() }
    let plan = FaultPlan()
    let task = Task {
      try await FaultPlan.$current.withValue(plan) {
        try await withTaskExecutorPreference(IPCWaitExecutor.shared) {
          try await channel.receive()
        }
      }
    }
    try await waitUntil("the channel receive sleeps on its semaphore set") {
      plan.calls(.semtimedop) >= 1
    }
    // It sleeps rather than waking in slices: one sleep lasts up to 50 ms (the channel looks at
    // its producers' liveness that often), where the 10 ms slices of before made five times the
    // calls. Counted over at least 300 ms, as a rate (a slow machine stretches the window).
    let clock = ContinuousClock()
    let (firstCalls, windowStart) = (plan.calls(.semtimedop), clock.now)
    try await Task.sleep(for: .milliseconds(300))
    let calls = plan.calls(.semtimedop) - firstCalls
    let window = (clock.now - windowStart) / .milliseconds(1)
    #expect(
      Double(calls) <= window / 25 + 2,
      "\(calls) semtimedop calls in \(Int(window)) ms: one per 10 ms would be slices")
    let start = clock.now
    task.cancel()
    let result = await task.result
    let elapsed = clock.now - start
    guard case .failure(let error) = result else {
      Issue.record("a cancelled channel receive completed")
      return
    }
    #expect((error as? IPCError)?.isCancellation == true, "\(error)")
    #expect((error as? IPCError)?.message.contains("MessageChannel.receive") == true, "\(error)")
    #expect(elapsed < .seconds(5), "ended by the signal, not by a slice: \(elapsed)")
    // Nothing consumed, and the channel still works for this handle.
    try await channel.send(Array("after".utf8), type: 2)
    let (message, type) = try channel.receive(block: false)
    #expect(message == Array("after".utf8) && type == 2)
  }

  /// When no thread can be started, a job of the executor runs on Swift's global executor
  /// instead (its task must not hang), and its waits take the hand-over path. (The executor here
  /// has a pool of its own whose `pthread_create` fails, by the fault plan it is given: a thread
  /// limit for this executor only; the task itself has no plan, so its waits find threads.)
  @Test func withoutThreadsTheExecutorsJobsStillRun() async throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    let refusal = FaultPlan(.init(.pthreadCreate, errno: EAGAIN, times: 1000))
    let noThreads = IPCWaitExecutor(pool: WaitThreadPool(plan: refusal))
    let task = Task {
      try await withTaskExecutorPreference(noThreads) {
        let ranOnAPoolThread = WaitThreadPool.isWaitThread
        try await semaphore.acquire(timeout: .seconds(60))
        return ranOnAPoolThread
      }
    }
    try await waitUntil("the acquire waits") { try semaphore.waitingForNonzero == 1 }
    try semaphore.release()
    let ranOnAPoolThread = try await task.value
    #expect(!ranOnAPoolThread, "the job ran on the global executor")
    #expect(refusal.calls(.pthreadCreate) >= 1, "the executor tried to start a thread")
    #expect(try semaphore.value == 0)
  }
}
