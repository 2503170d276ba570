// The examples of the articles "Concurrency" and "Waiting with async/await", compiled and run.
import Synchronization
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

// Concurrency.md: the async form of withAcquired.
/// Serves one request under a lock shared with other processes; while it waits for the lock,
/// no Swift concurrency thread is blocked.
func serve(_ request: String, lock: SysVIPC.Semaphore) async throws -> String {
  try await lock.withAcquired(timeout: .seconds(5)) {
    request.uppercased()
  }
}

// Concurrency.md: choosing the wait signal. Compiled here; run (in a process of its own, since
// the signal is chosen once per process) by WaitTests.theWaitSignalIsConfigurableBeforeTheFirstWait.
func chooseTheWaitSignal() throws {
  // At the start of the program, before any wait: the application uses the default signal itself.
  try IPCSystem.setWaitSignal(SIGUSR2)
}

// Concurrency.md: a receive loop on IPCWaitExecutor. Run by
// DocumentationExamplesConcurrency.receiveLoopOnTheWaitExecutor.
func receiveOnTheWaitExecutor(
  _ queue: MessageQueue, _ handle: @escaping @Sendable ([UInt8]) -> Void
)
  async throws
{
  // A receive loop that reacts as fast as a blocking C receiver, without blocking Swift's threads.
  try await withTaskExecutorPreference(IPCWaitExecutor.shared) {
    for try await (message, _) in queue.messages(type: 1) {
      handle(message)
    }
  }
}

@Suite("Documentation examples: concurrency")
struct DocumentationExamplesConcurrency {
  @Test func receiveLoopOnTheWaitExecutor() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    let received = Mutex<[String]>([])
    let loop = Task {
      try await receiveOnTheWaitExecutor(queue) { message in
        received.withLock { $0.append(String(decoding: message, as: UTF8.self)) }
      }
    }
    for word in ["one", "two", "three"] { try await queue.send(word, type: 1) }
    try await waitUntil("the loop received all three") { received.withLock { $0.count } == 3 }
    // Removing the queue ends the sequence, and with it the loop.
    try queue.remove()
    try await loop.value
    #expect(received.withLock { $0 } == ["one", "two", "three"])
  }

  @Test func asyncAcquire() async throws {
    let created = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? created.remove() }
    let semaphore = created
    // Concurrency.md: await.
    try await semaphore.acquire(timeout: .seconds(5))
    defer { try? semaphore.release() }
    #expect(try semaphore.value == 0)
  }

  @Test func serveUnderTheLock() async throws {
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }
    #expect(try await serve("hello", lock: lock) == "HELLO")
    #expect(try lock.value == 1)
  }

  @Test func moreTasksThanLicences() async throws {
    let licences = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 2)
    defer { try? licences.remove() }
    let busiest = Counter()
    // Concurrency.md: many tasks, one semaphore.
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<8 {
        group.addTask {
          // At most two tasks hold a licence; the others wait without blocking a thread.
          try await licences.withAcquired {
            busiest.enter()
            try await Task.sleep(for: .milliseconds(20))
            busiest.leave()
          }
        }
      }
      try await group.waitForAll()
    }
    #expect(busiest.maximum == 2)
    #expect(try licences.value == 2)
  }

  @Test(.timingSensitive) func cancellation() async throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    var cancelled = false
    let clock = ContinuousClock()
    let start = clock.now
    // Concurrency.md: cancellation.
    let waiter = Task {
      try await semaphore.acquire()
    }
    waiter.cancel()
    do {
      try await waiter.value
    } catch let error as IPCError where error.isCancellation {
      // The wait ended at once; the value is unchanged.
      cancelled = true
    }
    #expect(cancelled)
    // Returns rather than hangs; the 50 ms figure is SemaphoreAsyncTests' (timed in a helper).
    #expect(clock.now - start < .seconds(10))
    #expect(try semaphore.value == 0)
  }

  @Test(.timingSensitive) func cancellingAWaitThatHasBegun() async throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    let waiter = Task { try await semaphore.acquire() }
    try await waitUntil("the task waits in the kernel") { try semaphore.waitingForNonzero == 1 }
    let clock = ContinuousClock()
    let start = clock.now
    waiter.cancel()
    let error = await #expect(throws: IPCError.self) { try await waiter.value }
    let took = clock.now - start
    #expect(error?.isCancellation == true)
    #expect(took < .seconds(10), "cancellation took \(took)")
    try await waitUntil("the waiter left") { try semaphore.waitingForNonzero == 0 }
    #expect(try semaphore.value == 0)
  }

  @Test func asyncApply() async throws {
    let accounts = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? accounts.remove() }
    let mover = Task {
      // Concurrency.md: an async apply.
      try await accounts.apply(
        [.init(index: 0, delta: -10), .init(index: 1, delta: 10)], timeout: .seconds(30))
    }
    try await waitUntil("the transfer waits for funds") {
      try accounts.waitingForNonzero(at: 0) == 1
    }
    try accounts.setValue(10, at: 0)
    try await mover.value
    #expect(try accounts.values() == [0, 10])
  }
}

/// Counts how many tasks are inside a region at once.
final class Counter: Sendable {
  private let state = Mutex((inside: 0, maximum: 0))
  func enter() {
    state.withLock {
      $0.inside += 1
      $0.maximum = max($0.maximum, $0.inside)
    }
  }
  func leave() { state.withLock { $0.inside -= 1 } }
  var maximum: Int { state.withLock { $0.maximum } }
}
