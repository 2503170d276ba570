// What every scenario shares and is not measured: options, output, CPU pinning, the child
// process, and removing every object created, also on failure, on a signal or on a timeout.
import CBenchSupport
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A failure of the benchmark itself (bad option, failed check, failed child).
struct BenchFailure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Where the processes of a scenario run.
enum Pin: String {
  /// Both processes on one CPU: every hand-over is a context switch on that CPU.
  case same
  /// The parent on one CPU, the child on another: hand-overs are cross-CPU wake-ups.
  case split
  /// Wherever the scheduler puts them.
  case none
}

struct Options {
  var scenario: String
  var iterations: Int?
  var pin: Pin = .none
  var size: Int?
  var api: String = "copy"
  var kind: String = "all"
  var timeoutSeconds: UInt32 = 600
  /// How long a measurement window lasts (idle_waiters).
  var seconds: Double = 10

  /// `--iterations N --pin same|split|none --size N --api copy|zerocopy --kind ... --timeout S`.
  init(_ arguments: ArraySlice<String>) throws(BenchFailure) {
    guard let scenario = arguments.first else { throw BenchFailure("no scenario given") }
    self.scenario = scenario
    var rest = arguments.dropFirst()
    while let flag = rest.popFirst() {
      guard let value = rest.popFirst() else { throw BenchFailure("\(flag) needs a value") }
      switch flag {
      case "--iterations":
        guard let n = Int(value), n > 0 else { throw BenchFailure("bad --iterations \(value)") }
        iterations = n
      case "--pin":
        guard let p = Pin(rawValue: value) else { throw BenchFailure("bad --pin \(value)") }
        pin = p
      case "--size":
        guard let n = Int(value), n > 0 else { throw BenchFailure("bad --size \(value)") }
        size = n
      case "--api":
        guard
          [
            "copy", "zerocopy", "alloc", "buffer", "async", "executor", "blocking", "pool",
            "poller", "single",
          ]
          .contains(value)
        else {
          throw BenchFailure(
            "bad --api \(value) (copy|zerocopy|alloc|buffer|async|executor|blocking|pool|poller|single)"
          )
        }
        api = value
      case "--kind": kind = value
      case "--seconds":
        guard let n = Double(value), n > 0 else { throw BenchFailure("bad --seconds \(value)") }
        seconds = n
      case "--timeout":
        guard let n = UInt32(value), n > 0 else { throw BenchFailure("bad --timeout \(value)") }
        timeoutSeconds = n
      default: throw BenchFailure("unknown option \(flag)")
      }
    }
  }
}

// MARK: Output

/// `x` with `digits` decimals (printf's %.*f; this target does not import Foundation).
func fixed(_ x: Double, _ digits: Int32) -> String {
  var buffer = [CChar](repeating: 0, count: 64)
  _ = withVaList([digits, x]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
  return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Prints the result line: `scenario=… impl=swift ops=… seconds=… ops_per_s=…`, then
/// `MB_per_s` (10^6 bytes) when `bytesPerOp` is given, `rtt_us` for round trips, then `extra`.
func report(
  _ scenario: String, ops: Int, nanoseconds: Int64, bytesPerOp: Int? = nil,
  roundTrip: Bool = false, _ extra: KeyValuePairs<String, String> = [:]
) {
  let seconds = Double(nanoseconds) / 1e9
  var line = "scenario=\(scenario) impl=swift ops=\(ops) seconds=\(fixed(seconds, 6))"
  line += " ops_per_s=\(fixed(Double(ops) / seconds, 1))"
  if let bytesPerOp {
    line += " MB_per_s=\(fixed(Double(ops) * Double(bytesPerOp) / seconds / 1e6, 1))"
  }
  if roundTrip { line += " rtt_us=\(fixed(seconds / Double(ops) * 1e6, 3))" }
  for (key, value) in extra { line += " \(key)=\(value)" }
  // Context switches (voluntary/involuntary) of this process and its reaped children, as the C
  // side reports them.
  var own = rusage()
  var children = rusage()
  #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &own)
    getrusage(RUSAGE_CHILDREN.rawValue, &children)
  #else
    getrusage(RUSAGE_SELF, &own)
    getrusage(RUSAGE_CHILDREN, &children)
  #endif
  line += " switches=\(own.ru_nvcsw)/\(own.ru_nivcsw)"
  line += " child_switches=\(children.ru_nvcsw)/\(children.ru_nivcsw)"
  print(line)
}

/// Writes a line to standard error (Swift 6 refuses the C global `stderr`).
func printError(_ message: String) {
  var message = message + "\n"
  message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

// MARK: Pinning

/// The CPUs for the parent and the child under `pin` (nil: not pinned), taken from the CPUs
/// this process may use, before anything is pinned.
func cpuPlan(_ pin: Pin) throws(BenchFailure) -> (parent: Int32?, child: Int32?) {
  if pin == .none { return (nil, nil) }
  var cpus = [Int32](repeating: 0, count: 1024)
  let n = bench_allowed_cpus(&cpus, Int32(cpus.count))
  guard n >= 1 else { throw BenchFailure("sched_getaffinity failed: errno \(errno)") }
  if pin == .same { return (cpus[0], cpus[0]) }
  guard n >= 2 else { throw BenchFailure("--pin split needs two CPUs; this process has one") }
  return (cpus[0], cpus[1])
}

func pinSelf(_ cpu: Int32?) throws(BenchFailure) {
  guard let cpu else { return }
  guard bench_pin_cpu(cpu) == 0 else {
    throw BenchFailure("sched_setaffinity(\(cpu)) failed: errno \(errno)")
  }
}

// MARK: Cleanup

/// What removes the objects created so far; each action runs once.
let cleanupActions = Mutex<[@Sendable () -> Void]>([])

func atCleanup(_ action: @escaping @Sendable () -> Void) {
  cleanupActions.withLock { $0.append(action) }
}

/// Removes every object registered so far (newest first). Safe to call from any thread, more
/// than once: a second call finds nothing to do.
func cleanUp() {
  let actions = cleanupActions.withLock { actions in
    defer { actions = [] }
    return actions
  }
  for action in actions.reversed() { action() }
}

/// The child being run (0: none), for the signal guard.
let childPID = Atomic<Int32>(0)
/// The child's wait status, once reaped.
let childStatus = Atomic<Int32>(-1)

private let guardedSignals = [SIGINT, SIGTERM, SIGHUP, SIGALRM]

private func signalSet(_ signals: [Int32]) -> sigset_t {
  var set = sigset_t()
  sigemptyset(&set)
  for signal in signals { sigaddset(&set, signal) }
  return set
}

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGALRM in every thread and takes them in one thread
/// (sigwait) that removes the objects, stops the child and exits; arms SIGALRM as an overall
/// timeout, so that a lost child can never leave the parent and its objects waiting forever.
func installSignalGuard(timeoutSeconds: UInt32) {
  var blocked = signalSet(guardedSignals)
  pthread_sigmask(SIG_BLOCK, &blocked, nil)
  _ = startThread {
    var set = signalSet(guardedSignals)
    var signal: Int32 = 0
    sigwait(&set, &signal)
    cleanUp()
    let pid = childPID.load(ordering: .acquiring)
    if pid > 0 { kill(pid, SIGKILL) }
    let why = signal == SIGALRM ? "timed out" : "signal \(signal)"
    printError("ipc-bench: \(why); objects removed")
    _exit(2)
  }
  alarm(timeoutSeconds)
}

private final class ThreadBody {
  let body: @Sendable () -> Void
  init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a POSIX thread running `body`; returns it for pthread_join.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
  let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
  var thread = pthread_t()
  let rc = pthread_create(
    &thread, nil,
    { context in
      Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
      return nil
    }, context)
  precondition(rc == 0, "pthread_create failed: \(rc)")
  return thread
}

// MARK: The child process

/// A running child: this same binary, re-executed with `--child ROLE key=value…`.
struct Child {
  let pid: pid_t
  let watcher: pthread_t

  /// posix_spawn of /proc/self/exe (never fork() from Swift), with the guarded signals
  /// unblocked and at their defaults. A watcher thread reaps it; if it fails, the objects are
  /// removed at once, which wakes the parent from any wait with an error.
  init(role: String, _ arguments: [String]) throws(BenchFailure) {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var mask = signalSet([])
    var defaults = signalSet(guardedSignals)
    posix_spawnattr_setsigmask(&attributes, &mask)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = [CommandLine.arguments[0], "--child", role] + arguments
    var cArguments = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid = pid_t()
    let rc = posix_spawn(&pid, "/proc/self/exe", nil, &attributes, &cArguments, environ)
    guard rc == 0 else { throw BenchFailure("posix_spawn failed: errno \(rc)") }
    self.pid = pid
    childPID.store(pid, ordering: .releasing)
    watcher = startThread { [pid] in
      var status: Int32 = 0
      while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
      childPID.store(0, ordering: .releasing)
      childStatus.store(status, ordering: .releasing)
      if status != 0 {
        printError("ipc-bench: child \(pid) failed (wait status \(status)); removing objects")
        cleanUp()
      }
    }
  }

  /// Waits for the child to end; throws unless it exited with status 0.
  func join() throws(BenchFailure) {
    pthread_join(watcher, nil)
    let status = childStatus.load(ordering: .acquiring)
    guard status == 0 else { throw BenchFailure("child failed (wait status \(status))") }
  }
}

/// The arguments of a child: `key=value` words.
struct ChildArguments {
  private var values: [String: String] = [:]

  init(_ words: ArraySlice<String>) {
    for word in words {
      guard let equals = word.firstIndex(of: "=") else { continue }
      values[String(word[..<equals])] = String(word[word.index(after: equals)...])
    }
  }

  func int(_ key: String) throws(BenchFailure) -> Int {
    guard let text = values[key], let value = Int(text) else {
      throw BenchFailure("child: missing \(key)=")
    }
    return value
  }

  func int32(_ key: String) throws(BenchFailure) -> Int32 {
    Int32(truncatingIfNeeded: try int(key))
  }

  /// Dies with the parent, and pins itself as told (`cpu=-1`: not pinned).
  func setUp() throws(BenchFailure) {
    _ = bench_parent_death_signal(SIGKILL)
    let cpu = try int32("cpu")
    try pinSelf(cpu >= 0 ? cpu : nil)
  }
}

/// Warm-up rounds before the clock starts: the first calls pay for page faults and caches.
func warmUp(_ iterations: Int) -> Int { min(1000, max(1, iterations / 10)) }
