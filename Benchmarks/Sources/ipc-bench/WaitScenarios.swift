// What a wait costs (issue 12): mq_wake (send → resumption of a waiting receiver, against C's
// blocking msgrcv), idle_waiters (the CPU of many idle async waiters, their wake-up latency and
// their cancellation, for the library's design and for one polling thread), cancel_latency.
import CBenchSupport
import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Runs `body` in a task and blocks this thread on a POSIX semaphore until it ends (no polling).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
  let result = Mutex<Result<T, any Error>?>(nil)
  let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
  defer { done.deallocate() }
  sem_init(done, 0, 0)
  let post = SendablePointer(done)
  Task {
    let outcome: Result<T, any Error>
    do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
    result.withLock { $0 = outcome }
    sem_post(post.pointer)
  }
  while sem_wait(done) == -1 && errno == EINTR {}
  return try result.withLock { $0! }.get()
}

struct SendablePointer<T>: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<T>
  init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// User + system CPU of this process in nanoseconds (/proc/self/stat's utime + stime, as
/// `getrusage` reports them).
func processCPUNanoseconds() -> Int64 {
  var usage = rusage()
  #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
  #else
    getrusage(RUSAGE_SELF, &usage)
  #endif
  func ns(_ t: timeval) -> Int64 { Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_usec) * 1000 }
  return ns(usage.ru_utime) + ns(usage.ru_stime)
}

func median(_ values: [Int64]) -> Double {
  guard !values.isEmpty else { return 0 }
  let sorted = values.sorted()
  return Double(sorted[sorted.count / 2])
}

// MARK: mq_wake

/// The child sends a type-1 message holding the time of the send, 1 ms after the parent's last
/// acknowledgement (so that the parent surely waits again); the parent, waiting in `receive`
/// (`--api async`: the async form, in a task; `executor`: the same in a task that prefers
/// `IPCWaitExecutor`; `blocking`: the blocking form), takes the time
/// as soon as it runs again and acknowledges with type 2. One op = one wake-up; the time per
/// op is the mean latency from send to resumption.
func mqWake(_ options: Options) throws {
  let n = options.iterations ?? 300
  let warm = min(50, max(1, n / 10))
  let size = max(8, options.size ?? 64)
  let api = ["blocking", "executor"].contains(options.api) ? options.api : "async"
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: size)
  atCleanup { try? MessageQueue.remove(id: queue.id) }
  let child = try Child(
    role: "mq_wake",
    ["cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "queue=\(queue.id)", "size=\(size)"])
  try pinSelf(parentCPU)
  let total: Int64
  if api != "blocking" {
    // --api executor: the same loop in a task that prefers IPCWaitExecutor (the wait blocks the
    // thread the task runs on; no hand-over to a cooperative thread after it).
    let loop: @Sendable () async throws -> Int64 = {
      var sum: Int64 = 0
      for i in 0..<(warm + n) {
        let (message, _) = try await queue.receive(type: 1)
        let now = bench_now_ns()
        if i >= warm { sum += now - message.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        try await queue.send([1], type: 2)
      }
      return sum
    }
    total = try runBlocking {
      api == "executor"
        ? try await withTaskExecutorPreference(IPCWaitExecutor.shared) { try await loop() }
        : try await loop()
    }
  } else {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageCapacity, alignment: 16)
    defer { buffer.deallocate() }
    var sum: Int64 = 0
    for i in 0..<(warm + n) {
      _ = try queue.receive(into: buffer, type: 1)
      let now = bench_now_ns()
      if i >= warm { sum += now - buffer.loadUnaligned(as: Int64.self) }
      try queue.send([1], type: 2)
    }
    total = sum
  }
  try child.join()
  cleanUp()
  report(
    "mq_wake", ops: n, nanoseconds: total,
    ["size": "\(size)", "api": api, "pin": options.pin.rawValue])
}

func mqWakeChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let size = try arguments.int("size")
  let n = try arguments.int("iterations")
  let queue = try MessageQueue(id: try arguments.int32("queue"), maxMessageSize: size)
  var message = [UInt8](repeating: UInt8(ascii: "w"), count: size)
  let ack = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
  defer { ack.deallocate() }
  for _ in 0..<n {
    usleep(1000)
    let now = bench_now_ns()
    message.withUnsafeMutableBytes { $0.storeBytes(of: now, as: Int64.self) }
    try queue.send(message, type: 1)
    _ = try queue.receive(into: ack, type: 2)
  }
}

// MARK: idle_waiters

/// Wake-up times of the waiters, and how many woke.
private final class Wakes: Sendable {
  let started = Atomic<Int64>(0)
  let count = Atomic<Int>(0)
  let latencies = Mutex<[Int64]>([])
  let ended = Atomic<Int>(0)
  let cancelledAt = Atomic<Int64>(0)
  let slowestEnd = Atomic<Int64>(0)

  func woke() {
    let latency = bench_now_ns() - started.load(ordering: .acquiring)
    latencies.withLock { $0.append(latency) }
    count.add(1, ordering: .releasing)
  }

  func end() {
    _ = slowestEnd.max(
      bench_now_ns() - cancelledAt.load(ordering: .acquiring), ordering: .relaxed)
    ended.add(1, ordering: .releasing)
  }
}

/// `--iterations N` (default 1,000) async waiters, `--kind sem|mq|mixed`, each waiting again
/// after every wake-up: waiter i acquires a semaphore (all share one) or receives type i + 1 from
/// a queue (all share one). `--api pool` (default) uses the library's async forms; `--api
/// poller` the other design, one thread for all waits, which can only poll (a System V wait
/// cannot be multiplexed): every 1 ms it tries each waiter's operation without waiting.
///
/// Once all wait, the process's CPU time (user + system) is read over `--seconds` (default
/// 10); then 200 wake-ups, 2 ms apart (a release, or a message to a random receiver), each
/// timed from the release or send to the waiter's resumption; then every task is cancelled and
/// the slowest end after the cancel is timed.
func idleWaiters(_ options: Options) throws {
  let count = options.iterations ?? 1000
  let kind = options.kind == "all" ? "mixed" : options.kind
  guard ["sem", "mq", "mixed"].contains(kind) else { throw BenchFailure("--kind sem|mq|mixed") }
  let design = options.api == "poller" ? "poller" : "pool"
  let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  atCleanup { try? SysVIPC.Semaphore.remove(id: semaphore.id) }
  let queue = try MessageQueue(key: nil, flags: .createExclusive)
  atCleanup { try? MessageQueue.remove(id: queue.id) }
  let wakes = Wakes()
  let poller = design == "poller" ? Poller(intervalMicroseconds: 1000) : nil
  var tasks: [Task<Void, Never>] = []
  var receivers: [Int] = []
  for i in 0..<count {
    let receives = kind == "mq" || (kind == "mixed" && i % 2 == 1)
    if receives { receivers.append(i) }
    tasks.append(
      Task {
        while !Task.isCancelled {
          do {
            if let poller {
              try await poller.wait(receives ? .receive(queue, type: i + 1) : .acquire(semaphore))
            } else if receives {
              _ = try await queue.receive(type: i + 1)
            } else {
              try await semaphore.acquire()
            }
            wakes.woke()
          } catch {
            break
          }
        }
        wakes.end()
      })
  }
  // All waiting: the semaphore's waiters in the kernel, the receivers' threads (pool) or a
  // settling second (poller).
  let semaphoreWaiters = count - receivers.count
  let deadline = bench_now_ns() + 60_000_000_000
  while try design == "pool"
    && (semaphore.waitingForNonzero < semaphoreWaiters || threads() < receivers.count)
  {
    guard bench_now_ns() < deadline else { throw BenchFailure("the waiters never all waited") }
    usleep(10_000)
  }
  sleep(1)
  let threadsWhileIdle = threads()
  let (wall, cpu) = (bench_now_ns(), processCPUNanoseconds())
  usleep(UInt32(options.seconds * 1e6))
  let idleCPU = processCPUNanoseconds() - cpu
  let idleWall = bench_now_ns() - wall

  var random = SystemRandomNumberGenerator()
  let probes = 200
  for p in 0..<probes {
    let before = wakes.count.load(ordering: .acquiring)
    let useQueue = !receivers.isEmpty && (kind == "mq" || (kind == "mixed" && p % 2 == 1))
    wakes.started.store(bench_now_ns(), ordering: .releasing)
    if useQueue {
      try queue.send([1], type: receivers.randomElement(using: &random)! + 1)
    } else {
      try semaphore.release()
    }
    while wakes.count.load(ordering: .acquiring) == before { usleep(100) }
    usleep(2000)
  }
  let latencies = wakes.latencies.withLock { $0 }

  wakes.cancelledAt.store(bench_now_ns(), ordering: .releasing)
  for task in tasks { task.cancel() }
  poller?.cancelAll()
  while wakes.ended.load(ordering: .acquiring) < count { usleep(1000) }
  let slowestCancel = wakes.slowestEnd.load(ordering: .relaxed)
  cleanUp()
  let percent = Double(idleCPU) / Double(idleWall) * 100
  print(
    "scenario=idle_waiters impl=swift waiters=\(count) kind=\(kind) api=\(design)"
      + " idle_seconds=\(fixed(Double(idleWall) / 1e9, 2))"
      + " idle_cpu_ms=\(fixed(Double(idleCPU) / 1e6, 1)) idle_core_percent=\(fixed(percent, 3))"
      + " threads=\(threadsWhileIdle) wake_median_us=\(fixed(median(latencies) / 1e3, 1))"
      + " wake_max_us=\(fixed(Double(latencies.max() ?? 0) / 1e3, 1)) wakes=\(latencies.count)"
      + " cancel_all_ms=\(fixed(Double(slowestCancel) / 1e6, 1))")
}

/// This process's threads (/proc/self/task).
func threads() -> Int {
  guard let directory = opendir("/proc/self/task") else { return -1 }
  defer { closedir(directory) }
  var count = 0
  while let entry = readdir(directory) {
    if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
  }
  return count
}

/// The other design, for comparison: one thread serves every wait by trying each waiter's
/// operation without waiting, every `interval`; a System V wait offers nothing to block on for
/// many objects at once.
final class Poller: Sendable {
  enum Operation: Sendable {
    case acquire(SysVIPC.Semaphore)
    case receive(MessageQueue, type: Int)
  }

  private struct Waiter {
    let operation: Operation
    let continuation: CheckedContinuation<Void, any Error>
  }

  private let waiters = Mutex<[Waiter]>([])
  private let cancelled = Atomic<Bool>(false)

  init(intervalMicroseconds: UInt32) {
    _ = startThread { [self] in
      while true {
        usleep(intervalMicroseconds)
        let stop = cancelled.load(ordering: .acquiring)
        waiters.withLock { all in
          all.removeAll { waiter in
            if stop {
              waiter.continuation.resume(throwing: CancellationError())
              return true
            }
            do {
              switch waiter.operation {
              case .acquire(var semaphore):
                semaphore.block = false
                try semaphore.acquire()
              case .receive(let queue, let type):
                _ = try queue.receive(block: false, type: type)
              }
              waiter.continuation.resume()
              return true
            } catch {
              return false
            }
          }
        }
      }
    }
  }

  func wait(_ operation: Operation) async throws {
    try await withCheckedThrowingContinuation { continuation in
      waiters.withLock { $0.append(Waiter(operation: operation, continuation: continuation)) }
    }
  }

  func cancelAll() { cancelled.store(true, ordering: .releasing) }
}

// MARK: cancel_latency

/// One async wait at a time (`--kind sem`: acquire; `mq`: receive), cancelled once it waits in
/// the kernel; one op = one cancellation, timed from `cancel()` to the task's end.
func cancelLatency(_ options: Options) throws {
  let n = options.iterations ?? 200
  let kind = options.kind == "mq" ? "mq" : "sem"
  let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  atCleanup { try? SysVIPC.Semaphore.remove(id: semaphore.id) }
  let queue = try MessageQueue(key: nil, flags: .createExclusive)
  atCleanup { try? MessageQueue.remove(id: queue.id) }
  var latencies: [Int64] = []
  for _ in 0..<n {
    let ended = SendableAtomic()
    let task = Task {
      if kind == "sem" {
        try? await semaphore.acquire()
      } else {
        _ = try? await queue.receive()
      }
      ended.value.store(bench_now_ns(), ordering: .releasing)
    }
    // Waiting in the kernel: counted by the semaphore; a receiver, after a settling time.
    if kind == "sem" {
      while try semaphore.waitingForNonzero < 1 { usleep(200) }
    } else {
      usleep(5000)
    }
    let cancelled = bench_now_ns()
    task.cancel()
    while ended.value.load(ordering: .acquiring) == 0 { usleep(50) }
    latencies.append(ended.value.load(ordering: .acquiring) - cancelled)
  }
  cleanUp()
  print(
    "scenario=cancel_latency impl=swift kind=\(kind) cancels=\(n)"
      + " median_ms=\(fixed(median(latencies) / 1e6, 3))"
      + " max_ms=\(fixed(Double(latencies.max() ?? 0) / 1e6, 3))")
}

final class SendableAtomic: Sendable {
  let value = Atomic<Int64>(0)
}
