import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Swift with Python's `sysv_ipc` (built from source by .ci/run) and with C, on real objects:
/// the reference's purpose is interaction between programs in different languages.
@Suite("Interop: Swift with Python and C", .serialized, .timingSensitive)
struct InteropTests {
  // MARK: Shared memory and a semaphore: premise and conclusion

  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func swiftPremisePythonConclusion() async throws {
    try await converse(
      premise: .swift("sem_and_shm", "premise"),
      conclusion: .python("sem_and_shm.py", "conclusion"),
      expectedKinds: [.semaphore, .sharedMemory])
  }

  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func pythonPremiseSwiftConclusion() async throws {
    try await converse(
      premise: .python("sem_and_shm.py", "premise"),
      conclusion: .swift("sem_and_shm", "conclusion"),
      expectedKinds: [.semaphore, .sharedMemory])
  }

  @Test(.enabled(if: cDemo != nil, "no C compiler (cc) to build Demos/sem_and_shm/c"))
  func swiftPremiseCConclusion() async throws {
    let c = try #require(cDemo)
    try await converse(
      premise: .swift("sem_and_shm", "premise"),
      conclusion: Speaker(executable: "\(c)/conclusion", arguments: []),
      expectedKinds: [.semaphore, .sharedMemory])
  }

  @Test(.enabled(if: cDemo != nil, "no C compiler (cc) to build Demos/sem_and_shm/c"))
  func cPremiseSwiftConclusion() async throws {
    let c = try #require(cDemo)
    try await converse(
      premise: Speaker(executable: "\(c)/premise", arguments: []),
      conclusion: .swift("sem_and_shm", "conclusion"),
      expectedKinds: [.semaphore, .sharedMemory])
  }

  @Test(
    .enabled(if: cDemo != nil, "no C compiler (cc) to build Demos/sem_and_shm/c"),
    .enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func cAndPythonTooSoEveryPairingWorks() async throws {
    let c = try #require(cDemo)
    try await converse(
      premise: Speaker(executable: "\(c)/premise", arguments: []),
      conclusion: .python("sem_and_shm.py", "conclusion"),
      expectedKinds: [.semaphore, .sharedMemory])
    try await converse(
      premise: .python("sem_and_shm.py", "premise"),
      conclusion: Speaker(executable: "\(c)/conclusion", arguments: []),
      expectedKinds: [.semaphore, .sharedMemory])
  }

  // MARK: A semaphore

  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func semaphoreAcquiredInPythonReleasedInSwift() async throws {
    let python = try #require(python3)
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let process = try LaunchedProcess(
      python, ["\(packageRoot)/Tests/Interop/semaphore.py", String(semaphore.key.rawValue)])
    try await process.waitForOutput("waiting=yes")
    #expect(process.output.contains("acquired=0\n"), "\(process.output)")
    // Python's timed acquire gave up after about 0.2 s: timeouts work in this sysv_ipc.
    let timeoutLine = try #require(
      process.output.split(separator: "\n").first { $0.hasPrefix("timeout=") })
    let waited = try #require(Double(timeoutLine.dropFirst("timeout=".count)))
    #expect(waited >= 0.19 && waited < 5, "\(timeoutLine)")

    // Python now waits in acquire: the kernel shows the waiter, and a release from Swift
    // lets it through.
    try await waitUntil("Python waits on the semaphore") { try semaphore.waitingForNonzero == 1 }
    #expect(try semaphore.value == 0)
    try semaphore.release()
    let outcome = try await process.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.output.contains("reacquired=0"), "\(outcome)")
    #expect(try semaphore.value == 0)
    #expect(try semaphore.lastPID == process.pid, "Python's acquire was the last operation")
  }
}

@Suite("Interop: message queues, Swift with Python", .serialized, .timingSensitive)
struct InteropMessageQueueTests {
  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func swiftPremisePythonConclusion() async throws {
    try await converse(
      premise: .swift("message_queues", "premise"),
      conclusion: .python("message_queues.py", "conclusion"), expectedKinds: [.messageQueue])
  }

  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func pythonPremiseSwiftConclusion() async throws {
    try await converse(
      premise: .python("message_queues.py", "premise"),
      conclusion: .swift("message_queues", "conclusion"), expectedKinds: [.messageQueue])
  }

  /// Swift asks, a Python server answers: requests of type 1, each reply typed with the
  /// asker's pid so that it reaches only its asker; a message of another type is left alone.
  @Test(.enabled(if: python3 != nil, "python3 with the sysv_ipc module is not installed"))
  func typedRequestAndReplyWithAPythonServer() async throws {
    let python = try #require(python3)
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let server = try LaunchedProcess(
      python, ["\(packageRoot)/Tests/Interop/mq_server.py", String(queue.key.rawValue)])
    do {
      try await server.waitForOutput("serving=yes")
      let me = Int(getpid())
      try await queue.send("not for the server", type: 9)
      for number in [2, 3, 12, -5] {
        try await queue.send("\(me) \(number)", type: 1)
        let reply = try await onThread { try queue.receive(type: me, timeout: .seconds(30)) }
        #expect(reply.type == me)
        #expect(
          String(decoding: reply.message, as: UTF8.self)
            == "\(number) squared is \(number * number)")
      }
      try await queue.send("\(me) quit", type: 1)
      let bye = try await onThread { try queue.receive(type: me, timeout: .seconds(30)) }
      #expect(bye.message == Array("bye".utf8))
    } catch {
      await server.kill()
      throw error
    }
    let outcome = try await server.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.output.contains("served=4"), "\(outcome)")
    // The type-9 message is still there: typed receives leave other types alone.
    let left = try await queue.receive(block: false)
    #expect(left.type == 9 && left.message == Array("not for the server".utf8))
    #expect(try queue.currentMessages == 0)
  }
}
