import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A program the interoperation, CLI and demo tests start: a product built beside the tests
/// (`sysvipc`, the demos), `python3`, or a C demo. Its standard output and error go to files
/// that the test reads while it runs; waits poll, never blocking a concurrency thread.
final class LaunchedProcess: Sendable {
  let pid: pid_t
  let arguments: [String]
  let outputPath: String
  let errorPath: String

  /// Starts `executable` with `arguments`, in `directory` when given, with standard input from
  /// `input` (a file) or /dev/null.
  init(
    _ executable: String, _ arguments: [String], directory: String? = nil, input: String? = nil
  ) throws {
    self.arguments = [executable] + arguments
    let base = FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-launched-\(UUID().uuidString)").path
    outputPath = base + ".out"
    errorPath = base + ".err"
    // glibc's Swift overlay lacks posix_spawn_file_actions_addchdir_np: a shell changes the
    // directory and then execs the program, keeping the pid.
    var argv = [executable] + arguments
    if let directory { argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory] + argv }
    pid = try spawnCleanly(argv, input: input, output: outputPath, error: errorPath)
  }

  /// Standard output so far.
  var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
  /// Standard error so far.
  var errors: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

  func signal(_ number: Int32) { Glibc.kill(pid, number) }

  /// Waits until standard output contains `text`.
  func waitForOutput(_ text: String, timeout: Duration = .seconds(60)) async throws {
    try await waitUntil("\(arguments) printed \(text)", timeout: timeout) {
      self.output.contains(text)
    }
  }

  struct Outcome: Sendable, CustomStringConvertible {
    /// The exit status, or 128 + the signal that ended the process.
    var status: Int32
    var output: String
    var errors: String
    var description: String { "status \(status)\n--- stdout\n\(output)--- stderr\n\(errors)" }
  }

  /// Waits for the end, reaps the process and collects its output.
  func outcome(timeout: Duration = .seconds(120)) async throws -> Outcome {
    var raw: Int32 = 0
    try await waitUntil("\(arguments) exited", timeout: timeout) {
      waitpid(self.pid, &raw, WNOHANG) == self.pid
    }
    let status: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    let result = Outcome(status: status, output: output, errors: errors)
    try? FileManager.default.removeItem(atPath: outputPath)
    try? FileManager.default.removeItem(atPath: errorPath)
    return result
  }

  /// Kills the process (SIGKILL) and reaps it: for a failed test's cleanup.
  func kill() async {
    signal(SIGKILL)
    _ = try? await outcome(timeout: .seconds(30))
  }

  /// Runs a program to its end.
  static func run(
    _ executable: String, _ arguments: [String], directory: String? = nil, input: String? = nil,
    timeout: Duration = .seconds(120)
  ) async throws -> Outcome {
    try await LaunchedProcess(executable, arguments, directory: directory, input: input)
      .outcome(timeout: timeout)
  }
}

/// An executable product built beside the test bundle (`sysvipc`, `sem_and_shm`, ...), found as
/// ``HelperProcess/executable`` finds the helper.
func builtProduct(_ name: String) -> String {
  URL(fileURLWithPath: HelperProcess.executable).deletingLastPathComponent()
    .appendingPathComponent(name).path
}

/// The package's root directory, for Demos/ and Tests/Interop/.
let packageRoot: String = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The path of an executable found on PATH.
func onPath(_ name: String) -> String? {
  for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    .split(separator: ":")
  {
    let candidate = "\(directory)/\(name)"
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
  }
  return nil
}

/// Runs a command to its end, blocking: only for the checks the test traits make.
func succeeds(_ executable: String, _ arguments: [String]) -> Bool {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
  let argv = ([executable] + arguments).map { strdup($0) } + [nil]
  defer { argv.forEach { free($0) } }
  var pid: pid_t = 0
  guard posix_spawn(&pid, executable, &actions, nil, argv, environ) == 0 else { return false }
  var status: Int32 = 0
  while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
  return status == 0
}

/// `python3` when it is installed and can import `sysv_ipc` (`.ci/run` installs it from source);
/// `nil` otherwise, and the Python interop tests are skipped, saying so.
let python3: String? = {
  guard let python = onPath("python3"), succeeds(python, ["-c", "import sysv_ipc"]) else {
    return nil
  }
  return python
}()

/// A C compiler, for the C versions of premise and conclusion.
let cCompiler: String? = onPath("cc") ?? onPath("gcc") ?? onPath("clang")

/// A key that no semaphore, shared memory segment or message queue uses now: the demos take a
/// fixed KEY from params.txt, so the tests find a free one (create exclusively at a random key,
/// and remove) and write it into a temporary params.txt.
func unusedKey() throws -> IPCKey {
  for _ in 0..<100 {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    let key = semaphore.key
    try semaphore.remove()
    // Free for shared memory and queues too? (Taken: try another.)
    guard let memory = try? SharedMemory(key: key, flags: .createExclusive, size: 64) else {
      continue
    }
    try memory.remove()
    guard let queue = try? MessageQueue(key: key, flags: .createExclusive) else { continue }
    try queue.remove()
    return key
  }
  throw TimedOut(description: "no key free for every kind of object")
}

/// Removes the objects at `key` that this user created (a failed test's leftovers) and returns
/// their descriptions; the demos' own cleanup should leave none.
@discardableResult
func removeObjects(withKey key: IPCKey) -> [String] {
  guard let objects = try? IPCSystem.objects() else { return [] }
  var removed: [String] = []
  for object in objects where object.key == key && object.cuid == geteuid() {
    let description = "\(object.kind) \(object.id)"
    switch object.kind {
    case .semaphore: try? SysVIPC.Semaphore.remove(id: object.id)
    case .sharedMemory: try? SharedMemory.remove(id: object.id)
    case .messageQueue: try? MessageQueue.remove(id: object.id)
    }
    removed.append(description)
  }
  return removed
}

/// The objects at `key` now.
func objects(withKey key: IPCKey) throws -> [IPCObjectInfo] {
  try IPCSystem.objects().filter { $0.key == key }
}

/// A temporary directory holding a params.txt, removed by `remove()`.
struct DemoDirectory {
  let path: String

  init(params: [(String, String)]) throws {
    path =
      FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-demo-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    let text = params.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n"
    try text.write(toFile: path + "/params.txt", atomically: true, encoding: .utf8)
  }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}
