import SysVIPCChannel
import SystemPackage
import Testing

@testable import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Faults the system does not produce on demand, injected in debug builds (issue 12; the
/// `FaultPlan` of Core/FaultInjection.swift).
@Suite("Waits: faults")
struct WaitFaultTests {
  /// Defect 2: when no thread can be started (`pthread_create` fails at a thread or memory
  /// limit), an async wait throws `.system` EAGAIN saying why, instead of waiting on the
  /// caller's cooperative thread (which froze the program: the task that would have released
  /// the semaphore never ran). Without the fault the same wait works.
  @Test func anAsyncWaitWithoutAThreadFailsInsteadOfBlockingTheCooperativePool() async throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let waits: [(String, @Sendable () async throws(IPCError) -> Void)] = [
      ("acquire", { () async throws(IPCError) in try await semaphore.acquire() }),
      (
        "receive",
        { () async throws(IPCError) in _ = try await queue.receive(timeout: .seconds(30)) }
      ),
    ]
    for (name, wait) in waits {
      // The plan is the task's: the pool's pthread_create fails for this task's waits only.
      let plan = FaultPlan(.init(.pthreadCreate, errno: EAGAIN, times: 100))
      await FaultPlan.$current.withValue(plan) {
        do throws(IPCError) {
          try await wait()
          Issue.record("\(name) completed without a thread")
        } catch {
          #expect(error.kind == .system, "\(name): \(error)")
          #expect(error.errno == .resourceTemporarilyUnavailable, "\(name): \(error)")
          #expect(error.message.contains("pthread_create"), "\(name): \(error)")
        }
      }
    }
    // The same waits, with threads: they wait, and complete.
    async let acquired: Void = semaphore.acquire()
    async let received = queue.receive(timeout: .seconds(30))
    try await waitUntil("the acquire waits") { try semaphore.waitingForNonzero == 1 }
    try semaphore.release()
    try await queue.send("x")
    try await acquired
    #expect(try await received.message == Array("x".utf8))
  }

  /// The channel's async waits start their thread through the same layer: without one, the
  /// receive fails (nothing consumed) instead of running on a cooperative thread.
  @Test func aChannelsAsyncReceiveWithoutAThreadFails() async throws {
    let channel = try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 8)
    defer { try? channel.remove() }
    let plan = FaultPlan(.init(.pthreadCreate, errno: EAGAIN, times: 100))
    await FaultPlan.$current.withValue(plan) {
      do throws(IPCError) {
        _ = try await channel.receive(timeout: .seconds(30))
        Issue.record("receive completed without a message or a thread")
      } catch {
        #expect(error.kind == .system, "\(error)")
        #expect(error.errno == .resourceTemporarilyUnavailable, "\(error)")
        #expect(error.message.contains("pthread_create"), "\(error)")
      }
    }
    // With threads it waits, and takes the message sent meanwhile.
    async let received = channel.receive(timeout: .seconds(30))
    try await channel.send(Array("x".utf8), type: 3)
    let (message, type) = try await received
    #expect(message == Array("x".utf8) && type == 3)
  }
}
