import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The waits of issue 12, in a process of their own:
/// wait-run WAIT FORM ID [--timeout S] [--block-signals] [--wait-signal N]
///     one wait: WAIT is acquire, zero (semaphore ID), apply (set ID: index 0 by -1), send (a
///     full queue ID: "late"), receive (queue ID); FORM is sync, async, or executor (async in a
///     task that prefers IPCWaitExecutor; prints thread=TID, the task's thread before the wait,
///     and sameThread=yes when the task ran on there after the wait). `--block-signals`
///     blocks every signal in the calling thread first; `--wait-signal N` sets the wait signal.
///     Prints waiting=yes, then the result (a received message as message=…)
/// wait-apply-nonblocking SET_ID   async apply of [0 += 1, 1 -= 1 nonBlocking] with semaphore 1
///     at 0, without and with a 2 s timeout: prints each error, wall and CPU milliseconds
/// wait-idle N WAIT SECONDS SEM_ID QUEUE_ID   N async waiters (WAIT: acquire, receive or mixed)
///     on semaphore SEM_ID and queue QUEUE_ID (receiver i waits for type i + 1); prints the
///     process's CPU milliseconds over SECONDS once they all wait, the threads, then cancels them
///     all and prints the slowest cancellation (ms)
/// wait-pool N SEM_ID              N async acquires; prints the threads while they wait, releases
///     them, and prints the threads 7 s later (the pool's idle threads end after 5 s)
/// wait-signal-config              setWaitSignal's checks, and the signal a timed wait installs
func waitCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "wait-run":
    let wait = args.next("wait")
    let form = args.next("form")
    let id = args.int32("id")
    let timeout = args.timeout()
    if let number = args.option("wait-signal").flatMap(Int32.init) {
      try IPCSystem.setWaitSignal(number)
    }
    if args.flag("block-signals") {
      var all = sigset_t()
      sigfillset(&all)
      pthread_sigmask(SIG_BLOCK, &all, nil)
    }
    if form == "async" {
      try runBlocking { () async throws(IPCError) in
        try await runWait(wait, id: id, timeout: timeout)
      }
    } else if form == "executor" {
      try runBlocking { () async throws(IPCError) in
        try await withTaskExecutorPreference(IPCWaitExecutor.shared) {
          () async throws(IPCError) in
          let before = kernelThreadID()
          report("thread", before.split(separator: "/").last.map(String.init) ?? "?")
          defer { report("sameThread", before == kernelThreadID() ? "yes" : "no") }
          try await runWait(wait, id: id, timeout: timeout)
        }
      }
    } else {
      try runWait(wait, id: id, timeout: timeout)
    }
    report("waitSignal", String(IPCSystem.waitSignal))
  case "wait-apply-nonblocking":
    let set = try SemaphoreSet(id: args.int32("id"))
    for timeout in [nil, Duration.seconds(2)] {
      let label = timeout == nil ? "untimed" : "timed"
      let (wall, cpu) = (monotonicSeconds(), cpuSeconds())
      do {
        try runBlocking { () async throws(IPCError) in
          try await set.apply(
            [.init(index: 0, delta: 1), .init(index: 1, delta: -1, nonBlocking: true)],
            timeout: timeout)
        }
        report("\(label).outcome", "completed")
      } catch {
        report("\(label).outcome", "\(error.kind)")
        report("\(label).message", error.message)
      }
      report("\(label).wallMs", String(Int((monotonicSeconds() - wall) * 1000)))
      report("\(label).cpuMs", String(Int((cpuSeconds() - cpu) * 1000)))
    }
    report("values", try set.values().map(String.init).joined(separator: ","))
  case "wait-idle":
    try idleWaiters(
      count: Int(args.next("count")) ?? 1, wait: args.next("wait"),
      seconds: Double(args.next("seconds")) ?? 1, semaphore: try Semaphore(id: args.int32("sem")),
      queue: try MessageQueue(id: args.int32("queue")))
  case "wait-pool":
    let count = Int(args.next("count")) ?? 1
    let semaphore = try Semaphore(id: args.int32("id"))
    report("threadsBefore", String(threadCount()))
    let done = SharedAtomic<Int>(0)
    for _ in 0..<count {
      Task {
        try await semaphore.acquire()
        done.atomic.add(1, ordering: .relaxed)
      }
    }
    while try semaphore.waitingForNonzero < count { usleep(1000) }
    report("threadsWaiting", String(threadCount()))
    try semaphore.release(delta: count)
    while done.atomic.load(ordering: .relaxed) < count { usleep(1000) }
    sleep(7)
    report("threadsAfter", String(threadCount()))
  case "wait-signal-config":
    signalConfiguration()
  default:
    fail("unknown command \(command)")
  }
}

/// One wait of `wait-run`, blocking.
private func runWait(_ wait: String, id: Int32, timeout: Duration?) throws(IPCError) {
  report("waiting", "yes")
  switch wait {
  case "acquire": try Semaphore(id: id).acquire(timeout: timeout)
  case "zero": try Semaphore(id: id).waitForZero(timeout: timeout)
  case "apply": try SemaphoreSet(id: id).apply([.init(index: 0, delta: -1)], timeout: timeout)
  case "send": try MessageQueue(id: id).send("late", timeout: timeout)
  case "receive":
    let (message, _) = try MessageQueue(id: id).receive(timeout: timeout)
    report("message", String(decoding: message, as: UTF8.self))
  default: fail("unknown wait \(wait)")
  }
}

/// One wait of `wait-run`, async.
private func runWait(_ wait: String, id: Int32, timeout: Duration?) async throws(IPCError) {
  report("waiting", "yes")

  switch wait {
  case "acquire": try await Semaphore(id: id).acquire(timeout: timeout)
  case "zero": try await Semaphore(id: id).waitForZero(timeout: timeout)
  case "apply":
    try await SemaphoreSet(id: id).apply([.init(index: 0, delta: -1)], timeout: timeout)
  case "send": try await MessageQueue(id: id).send("late", timeout: timeout)
  case "receive":
    let (message, _) = try await MessageQueue(id: id).receive(timeout: timeout)
    report("message", String(decoding: message, as: UTF8.self))
  default: fail("unknown wait \(wait)")
  }
}

/// Runs `body` in a task and blocks this (main) thread until it ends, on a POSIX semaphore:
/// no polling, so an idle helper costs no CPU.
func runBlocking(_ body: @escaping @Sendable () async throws(IPCError) -> Void) throws(IPCError) {
  let result = Mutex<Result<Void, IPCError>?>(nil)
  let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
  defer { done.deallocate() }
  sem_init(done, 0, 0)
  let signal = UnsafeSendable(done)
  Task {
    let outcome: Result<Void, IPCError>
    do throws(IPCError) {
      try await body()
      outcome = .success(())
    } catch {
      outcome = .failure(error)
    }
    result.withLock { $0 = outcome }
    sem_post(signal.value)
  }
  while sem_wait(done) == -1 && errno == EINTR {}
  try result.withLock { $0! }.get()
}

/// An atomic that tasks can share.
final class SharedAtomic<Value: AtomicRepresentable & Sendable>: Sendable {
  let atomic: Atomic<Value>
  init(_ value: Value) { atomic = Atomic(value) }
}

struct UnsafeSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}

/// User + system CPU time of this process (getrusage), in seconds.
func cpuSeconds() -> Double {
  var usage = rusage()
  #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
  #else
    getrusage(RUSAGE_SELF, &usage)
  #endif
  func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
  return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// This process's threads (/proc/self/task).
func threadCount() -> Int {
  guard let directory = opendir("/proc/self/task") else { return -1 }
  defer { closedir(directory) }
  var count = 0
  while let entry = readdir(directory) {
    if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
  }
  return count
}

private func idleWaiters(
  count: Int, wait: String, seconds: Double, semaphore: SysVIPC.Semaphore, queue: MessageQueue
) throws {
  let ended = SharedAtomic<Int>(0)
  let cancelledAt = SharedAtomic<Int64>(0)
  let slowest = SharedAtomic<Int64>(0)
  var tasks: [Task<Void, Never>] = []
  var receivers = 0
  for i in 0..<count {
    let receives = wait == "receive" || (wait == "mixed" && i % 2 == 1)
    if receives { receivers += 1 }
    tasks.append(
      Task {
        if receives {
          _ = try? await queue.receive(type: i + 1)
        } else {
          try? await semaphore.acquire()
        }
        let now = Int64(monotonicSeconds() * 1e9)
        let late = now - cancelledAt.atomic.load(ordering: .acquiring)
        _ = slowest.atomic.max(late, ordering: .relaxed)
        ended.atomic.add(1, ordering: .relaxed)
      })
  }
  // All waiting: the semaphore's count, and one pool thread per receiver.
  let base = threadCount()
  while try semaphore.waitingForNonzero < count - receivers || threadCount() < receivers {
    usleep(10_000)
  }
  _ = base
  sleep(1)
  let (wall, cpu) = (monotonicSeconds(), cpuSeconds())
  usleep(UInt32(seconds * 1e6))
  let used = cpuSeconds() - cpu
  let elapsed = monotonicSeconds() - wall
  report("idleCpuMs", String(Int(used * 1000)))
  report("idleWallMs", String(Int(elapsed * 1000)))
  report("idleCorePercent", String(used / elapsed * 100))
  report("threads", String(threadCount()))
  cancelledAt.atomic.store(Int64(monotonicSeconds() * 1e9), ordering: .releasing)
  for task in tasks { task.cancel() }
  while ended.atomic.load(ordering: .relaxed) < count { usleep(1000) }
  report("slowestCancelMs", String(Double(slowest.atomic.load(ordering: .relaxed)) / 1e6))
}

private func signalConfiguration() {
  func attempt(_ number: Int32) -> String {
    do {
      try IPCSystem.setWaitSignal(number)
      return "ok"
    } catch {
      return "\(error.kind)"
    }
  }
  report("kill", attempt(SIGKILL))
  report("segv", attempt(SIGSEGV))
  report("zero", attempt(0))
  report("usr2", attempt(SIGUSR2))
  report("configured", String(IPCSystem.waitSignal))
  // A timed wait installs it.
  let queue = try? MessageQueue(key: nil, flags: .createExclusive)
  defer { try? queue?.remove() }
  let wall = monotonicSeconds()
  do {
    _ = try queue?.receive(timeout: .milliseconds(100))
  } catch {
    report("timedReceive", "\(error.kind)")
  }
  report("timedReceiveMs", String(Int((monotonicSeconds() - wall) * 1000)))
  var action = sigaction()
  sigaction(SIGUSR2, nil, &action)
  #if canImport(Glibc)
    let handled = unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) > 1
  #elseif canImport(Musl)
    let handled = unsafeBitCast(action.__sa_handler.sa_handler, to: Int.self) > 1
  #else
    let handled = unsafeBitCast(action.__sigaction_u.__sa_handler, to: Int.self) > 1
  #endif
  report("usr2Handled", String(handled))
  report("afterInstall", attempt(SIGUSR1))
  report("sameAgain", attempt(SIGUSR2))
}

/// The calling thread's kernel id, from /proc/thread-self (a system call each time: glibc
/// declares `pthread_self` const, so the optimizer may move it across a suspension).
func kernelThreadID() -> String { symbolicLink("/proc/thread-self") ?? "?" }
