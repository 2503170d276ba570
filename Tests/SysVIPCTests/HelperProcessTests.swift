import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

@Suite("The test helper")
struct HelperProcessTests {
  /// A helper whose parent goes (here a shell that starts it in the background and exits once
  /// it waits; in life, a crashed or killed test run) ends by itself, instead of waiting in the
  /// kernel for ever: it was blocked acquiring a semaphore that stays at 0.
  @Test func aHelperWhoseParentGoesEnds() async throws {
    let semaphore = try makeSemaphore(initialValue: 0)
    defer { try? semaphore.remove() }
    // The shell's standard output is the helper's output file: it polls it for the helper's
    // "waiting" line (the helper has noted its parent by then), then exits.
    let shell = try HelperProcess(
      ["sem-acquire", String(semaphore.id)],
      launcher: [
        "/bin/sh", "-c",
        "\"$0\" \"$@\" & echo pid=$!; until grep -q waiting=yes /proc/$$/fd/1; do sleep 0.01; done",
      ])
    try await shell.waitForLine("waiting", "yes")
    let orphan = try #require(shell.value("pid").flatMap { pid_t($0) })
    _ = try await shell.outcome()
    func alive() -> Bool {
      guard let stat = try? String(contentsOfFile: "/proc/\(orphan)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { return false }
      return stat[stat.index(close, offsetBy: 2)...].first != "Z"
    }
    try await waitUntil("the orphaned helper \(orphan) ends", timeout: .seconds(20)) { !alive() }
    #expect(try semaphore.waitingForNonzero == 0)
  }
}
