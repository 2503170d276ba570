import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The kernel function a process sleeps in (`/proc/PID/wchan`), such as `do_msgrcv`; `nil`
/// where the kernel hides it (it then reads `0`).
func kernelWaitChannel(_ pid: pid_t) -> String? {
  guard let text = try? String(contentsOfFile: "/proc/\(pid)/wchan", encoding: .utf8),
    !text.isEmpty, text != "0"
  else { return nil }
  return text
}

/// Waits until `helper` said `waiting=yes` and sleeps in the kernel in `call` (a part of the
/// wait channel's name: `semtimedop`, `msgrcv`, `msgsnd`), or, where the kernel hides wait
/// channels, merely sleeps.
func waitUntilBlocked(_ helper: HelperProcess, in call: String) async throws {
  try await waitUntil("helper \(helper.arguments) blocked in \(call)") {
    guard helper.value("waiting") == "yes", helper.state == "S" else { return false }
    guard let channel = kernelWaitChannel(helper.pid) else { return true }
    return channel.contains(call)
  }
}

/// Prints a measured figure for RELIABILITY.md: `grep reliability-figure` in the test log.
func reportFigure(_ text: String) {
  print("reliability-figure: \(text)")
}

/// Helpers that a test starts and must not leave running: `killAll()` (in a `defer`) kills and
/// reaps those still running, also when the test fails half-way.
final class HelperGroup: @unchecked Sendable {
  private let lock = NSLock()
  private var helpers: [HelperProcess] = []

  func start(_ arguments: [String]) throws -> HelperProcess {
    let helper = try HelperProcess(arguments)
    lock.withLock { helpers.append(helper) }
    return helper
  }

  var all: [HelperProcess] { lock.withLock { helpers } }

  func killAll() {
    // `outcome()` removes a helper's output file once it has reaped it: only those with a
    // file can still be running (a reaped helper's pid may belong to someone else by now).
    for helper in all where FileManager.default.fileExists(atPath: helper.outputPath) {
      kill(helper.pid, SIGKILL)
      var status: Int32 = 0
      _ = waitpid(helper.pid, &status, 0)
      try? FileManager.default.removeItem(atPath: helper.outputPath)
    }
  }
}

/// The `after.NAME=KIND` lines of a `rel-wait` helper, by name.
func afterRemovalResults(_ output: String) -> [String: String] {
  var results: [String: String] = [:]
  for line in output.split(separator: "\n") where line.hasPrefix("after.") {
    let parts = line.dropFirst(6).split(separator: "=", maxSplits: 1)
    if parts.count == 2 { results[String(parts[0])] = String(parts[1]) }
  }
  return results
}

/// Removes the object of `kind` (semaphore, set, shared-memory, message-queue) with this id,
/// for cleanup: errors are ignored.
func removeObject(kind: String, id: Int32) {
  switch kind {
  case "semaphore", "set": try? SemaphoreSet.remove(id: id)
  case "shared-memory": try? SharedMemory.remove(id: id)
  default: try? MessageQueue.remove(id: id)
  }
}
