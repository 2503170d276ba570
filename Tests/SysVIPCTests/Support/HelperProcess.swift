import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A running `SysVIPCTestHelper`: the second process of a multi-process test.
///
/// Its output goes to a file that the test reads while it runs; nothing here blocks a Swift
/// concurrency thread (waits poll with `Task.sleep`).
final class HelperProcess: Sendable {
  let pid: pid_t
  let outputPath: String
  let arguments: [String]

  /// The helper executable, built beside the test bundle.
  static let executable: String = {
    let me =
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
      ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: me).deletingLastPathComponent()
    // On Linux the tests run from `.build/<triple>/debug/<name>.xctest`; the helper is beside it.
    for _ in 0..<3 {
      let candidate = directory.appendingPathComponent("SysVIPCTestHelper").path
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      directory = directory.deletingLastPathComponent()
    }
    return "SysVIPCTestHelper"
  }()

  /// Starts the helper with `arguments` (global options such as `--as-nobody` first), through
  /// `launcher` when given (such as `["/usr/bin/unshare", "--ipc"]`).
  init(_ arguments: [String], launcher: [String] = []) throws {
    self.arguments = arguments
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-helper-\(UUID().uuidString).out").path
    outputPath = path
    pid = try spawnCleanly(launcher + [Self.executable] + arguments, output: path)
  }

  /// The output file goes with the last reference, also when a test never collected the outcome.
  deinit { try? FileManager.default.removeItem(atPath: outputPath) }

  /// Everything the helper printed so far.
  var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

  /// The value of the last `key=value` line with this key.
  func value(_ key: String) -> String? {
    output.split(separator: "\n").last(where: { $0.hasPrefix("\(key)=") })
      .map { String($0.dropFirst(key.count + 1)) }
  }

  /// The process state letter from /proc/PID/stat (`S` sleeping, `T` stopped, `Z` zombie).
  var state: Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(close, offsetBy: 2)...].first
  }

  func signal(_ signal: Int32) { kill(pid, signal) }

  /// Waits until the helper prints a line `key=value` (or just a line starting with `key=`).
  func waitForLine(_ key: String, _ value: String? = nil, timeout: Duration = .seconds(30))
    async throws
  {
    try await waitUntil("helper printed \(key)=\(value ?? "*")", timeout: timeout) {
      self.output.split(separator: "\n").contains {
        value == nil ? $0.hasPrefix("\(key)=") : $0 == "\(key)=\(value!)"
      }
    }
  }

  /// The helper's result after it ended: `ok`, or `error` with the kind.
  struct Outcome: Sendable {
    var status: Int32
    var output: String
    var ok: Bool { status == 0 && output.contains("result=ok") }
    /// The `IPCError.Kind` the helper reported, as text (`busy`, `existential`, ...).
    var errorKind: String? {
      guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("result=error") })
      else { return nil }
      return line.split(separator: " ").first { $0.hasPrefix("kind=") }.map {
        String($0.dropFirst(5))
      }
    }
    func value(_ key: String) -> String? {
      output.split(separator: "\n").last(where: { $0.hasPrefix("\(key)=") })
        .map { String($0.dropFirst(key.count + 1)) }
    }
  }

  /// Waits for the end, reaps the helper and collects its output and exit status
  /// (128 + signal when a signal ended it).
  func outcome(timeout: Duration = .seconds(60)) async throws -> Outcome {
    var status: Int32 = 0
    try await waitUntil("helper \(arguments) exited", timeout: timeout) {
      waitpid(self.pid, &status, WNOHANG) == self.pid
    }
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let text = output
    try? FileManager.default.removeItem(atPath: outputPath)
    return Outcome(status: code, output: text)
  }

  /// Kills the helper (SIGKILL) and reaps it.
  func terminate() async {
    kill(pid, SIGKILL)
    _ = try? await outcome(timeout: .seconds(30))
  }

  /// Runs the helper to its end.
  static func run(
    _ arguments: [String], launcher: [String] = [], timeout: Duration = .seconds(60)
  ) async throws -> Outcome {
    try await HelperProcess(arguments, launcher: launcher).outcome(timeout: timeout)
  }
}

struct TimedOut: Error, CustomStringConvertible {
  var description: String
}

/// Polls `condition` every 10 ms until it holds, without blocking a concurrency thread.
/// Bounds are generous: the machines are slow and noisy.
func waitUntil(
  _ what: String, timeout: Duration = .seconds(30), _ condition: () throws -> Bool
) async throws {
  let clock = ContinuousClock()
  let end = clock.now.advanced(by: timeout)
  while try !condition() {
    if clock.now > end { throw TimedOut(description: "timed out waiting until \(what)") }
    try await Task.sleep(for: .milliseconds(10))
  }
}

/// Runs a blocking call on a thread of its own, so that a test can wait in the kernel without
/// taking one of Swift concurrency's few threads.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread {
      do { continuation.resume(returning: try body()) } catch {
        continuation.resume(throwing: error)
      }
    }
    thread.start()
  }
}

/// `body` on a thread of its own, started at once: not when one of Swift concurrency's threads
/// is free to start a task (`Task { try await onThread { … } }` waited over 10 s for one under
/// a sanitizer, while ~340 tests started). ``value`` waits for its result by polling, so no
/// continuation is resumed from the thread.
final class StartedThread<T: Sendable>: @unchecked Sendable {
  // NSLock (a pthread mutex) rather than Synchronization's Mutex, whose futex ThreadSanitizer
  // cannot see: it would report the result as a race.
  private let lock = NSLock()
  private var result: Result<T, any Error>?

  init(_ body: @escaping @Sendable () throws -> T) {
    Thread {
      let outcome = Result { try body() }
      self.lock.withLock { self.result = outcome }
    }.start()
  }

  /// What `body` returned or threw, once it has.
  var value: T {
    get async throws {
      try await waitUntil("the thread's body ended", timeout: .seconds(120)) {
        lock.withLock { result != nil }
      }
      return try lock.withLock { result! }.get()
    }
  }
}

/// A task whose outcome a test polls with a bound: a wait that never ends fails the test after
/// `timeout` instead of hanging it. The outcome is kept under a pthread mutex (NSLock), which
/// ThreadSanitizer sees.
final class BoundedTask<Success: Sendable>: Sendable {
  private final class Box: @unchecked Sendable {
    let lock = NSLock()
    var outcome: Result<Success, any Error>?
  }
  private let box = Box()
  private let task: Task<Void, Never>

  init(_ body: @escaping @Sendable () async throws -> Success) {
    let box = self.box
    task = Task {
      let outcome: Result<Success, any Error>
      do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
      box.lock.withLock { box.outcome = outcome }
    }
  }

  func cancel() { task.cancel() }

  /// What the body returned or threw, once it has; `TimedOut` after `timeout`.
  func outcome(_ what: String, timeout: Duration = .seconds(20)) async throws -> Result<
    Success, any Error
  > {
    try await waitUntil("\(what) ended", timeout: timeout) {
      box.lock.withLock { box.outcome != nil }
    }
    return box.lock.withLock { box.outcome! }
  }
}

/// Whether this process runs as root: permission tests need it, to create objects that an
/// unprivileged helper is then refused.
var isRoot: Bool { geteuid() == 0 }

/// Seconds on the monotonic clock, for measuring waits.
func elapsed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
  let clock = ContinuousClock()
  let start = clock.now
  let result = try body()
  let d = clock.now - start
  return (result, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
}

/// Asserts that `body` throws an `IPCError` of `kind`, and returns it.
@discardableResult
func expectIPCError<T>(
  _ kind: IPCError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> T
) -> IPCError? {
  do {
    _ = try body()
    Issue.record(
      "expected IPCError.\(kind), but the call succeeded", sourceLocation: sourceLocation)
    return nil
  } catch let error as IPCError {
    #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
    return error
  } catch {
    Issue.record("expected IPCError.\(kind), got \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

/// What process `pid` is, for a failure message: its command line from /proc, or that it has
/// gone. (A segment's `shm_lpid` naming an unexpected process says who else attached it.)
func processDescription(_ pid: pid_t?) -> String {
  guard let pid else { return "no pid" }
  guard
    let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty
  else { return "pid \(pid) (gone)" }
  let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
  return "pid \(pid): \(words.joined(separator: " "))"
}

/// Whether a thread of this process sleeps in the kernel in `call` on the object `id`: its
/// `/proc/self/task/TID/syscall` names `id` as the first argument (a System V call's id), and its
/// wait channel names `call` (or, where the kernel hides wait channels, it sleeps).
func aThreadWaits(in call: String, on id: Int32) -> Bool {
  let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
  let argument = "0x" + String(UInt32(bitPattern: id), radix: 16)
  for task in tasks {
    let path = "/proc/self/task/\(task)"
    guard
      let syscall = try? String(contentsOfFile: "\(path)/syscall", encoding: .utf8),
      syscall.split(separator: " ").dropFirst().first.map(String.init) == argument
    else { continue }
    let channel = (try? String(contentsOfFile: "\(path)/wchan", encoding: .utf8)) ?? ""
    if !channel.isEmpty && channel != "0" {
      if channel.contains(call) { return true }
      continue
    }
    if let stat = try? String(contentsOfFile: "\(path)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)...].first == "S"
    {
      return true
    }
  }
  return false
}
