import Foundation
import SysVIPC
import Testing

/// One side of a premise/conclusion conversation: a program and its arguments.
struct Speaker: CustomStringConvertible, Sendable {
  var executable: String
  var arguments: [String]
  var description: String { ([executable] + arguments).joined(separator: " ") }

  /// The Swift demo executable `name` (`sem_and_shm`, `message_queues`) in `role`.
  static func swift(_ demo: String, _ role: String) -> Speaker {
    Speaker(executable: builtProduct(demo), arguments: [role])
  }

  /// This package's Python version (Tests/Interop/`script`) in `role`.
  static func python(_ script: String, _ role: String) -> Speaker {
    Speaker(
      executable: python3 ?? "python3", arguments: ["\(packageRoot)/Tests/Interop/\(script)", role])
  }
}

/// Runs a premise/conclusion conversation over the objects at a fresh key: writes params.txt
/// into a temporary directory, starts the premise there, waits until it has created
/// `expectedKinds`, starts the conclusion, and checks that both succeed and that the premise
/// removed everything.
func converse(
  premise: Speaker, conclusion: Speaker, expectedKinds: Set<IPCObjectKind>,
  iterations: Int = 20, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
  let key = try unusedKey()
  let directory = try DemoDirectory(params: [
    ("ITERATIONS", String(iterations)), ("LIVE_DANGEROUSLY", "0"), ("KEY", String(key.rawValue)),
    ("PERMISSIONS", "0600"), ("SHM_SIZE", "4096"),
  ])
  defer {
    directory.remove()
    let leftovers = removeObjects(withKey: key)
    #expect(leftovers.isEmpty, "left behind: \(leftovers)", sourceLocation: sourceLocation)
  }
  let first = try LaunchedProcess(
    premise.executable, premise.arguments, directory: directory.path)
  do {
    try await waitUntil("\(premise) created its objects at key \(key)") {
      let kinds = Set(try objects(withKey: key).map(\.kind))
      if kinds == expectedKinds { return true }
      // A premise that failed early would be waited for in vain.
      if first.output.contains("Error") || first.errors.contains("Error") {
        throw TimedOut(description: "\(premise) failed: \(first.errors)")
      }
      return false
    }
  } catch {
    await first.kill()
    throw error
  }
  let second = try LaunchedProcess(
    conclusion.executable, conclusion.arguments, directory: directory.path)
  let conclusionOutcome = try await second.outcome()
  let premiseOutcome = try await first.outcome()
  #expect(
    premiseOutcome.status == 0, "\(premise): \(premiseOutcome)", sourceLocation: sourceLocation)
  #expect(
    conclusionOutcome.status == 0, "\(conclusion): \(conclusionOutcome)",
    sourceLocation: sourceLocation)
  // Every round was spoken: each side logged its last round's message.
  #expect(
    !premiseOutcome.output.contains("corruption")
      && !conclusionOutcome.output.contains("corruption"),
    sourceLocation: sourceLocation)
  #expect(
    try objects(withKey: key).isEmpty, "the premise removed what it created",
    sourceLocation: sourceLocation)
}

/// The C premise and conclusion, built once per test run into .build/c-demo with
/// Demos/sem_and_shm/c/build.sh; `nil` when there is no C compiler.
let cDemo: String? = {
  guard cCompiler != nil else { return nil }
  let directory = "\(packageRoot)/.build/c-demo"
  let script = "\(packageRoot)/Demos/sem_and_shm/c/build.sh"
  guard succeeds("/bin/sh", [script, directory]) else { return nil }
  return directory
}()
