// The examples of the articles "Message Queue Limits", "Waiting with async/await" and the shared
// memory parts of "Lifetimes and Cleanup", compiled and run; and the landing page's example.
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// MessageQueueLimits.md: a full queue, without waiting.
/// Sends `chunk` if the queue has room now; returns `false` when it is full.
func sendIfRoom(_ chunk: [UInt8], on queue: MessageQueue) throws(IPCError) -> Bool {
  do {
    try queue.send(chunk, block: false)
    return true
  } catch  where error.kind == .busy {
    // Full: try again later, or wait with a timeout.
    return false
  }
}

// AsyncAwait.md: a server.
/// Answers every request (type 1) with its text reversed (type 2), until the queue is removed or
/// the task is cancelled. Between messages it holds no thread.
func reverseServer(_ queue: MessageQueue) async throws {
  for try await (request, _) in queue.messages(type: 1) {
    try await queue.send(Array(request.reversed()), type: 2)
  }
}

@Suite("Documentation examples: message queue limits")
struct DocumentationExamplesMessageQueueLimits {
  @Test func readingTheLimits() throws {
    // MessageQueueLimits.md: reading the limits.
    let limits = try IPCSystem.limits()
    let largestMessage = limits.msgmax ?? 2048  // bytes in one message
    let queueCapacity = limits.msgmnb ?? 2048  // bytes on a new queue, all messages together
    #expect(largestMessage >= 1 && queueCapacity >= largestMessage)
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    #expect(try queue.maxSize == queueCapacity)
  }

  @Test func atEachLimit() throws {
    // MessageQueueLimits.md: a queue for large messages.
    let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: 8192)
    defer { try? queue.remove() }
    try queue.setMaxSize(4096)  // the owner may lower the capacity
    let chunk = [UInt8](repeating: 7, count: 1024)
    for _ in 0..<4 { #expect(try sendIfRoom(chunk, on: queue)) }
    #expect(try sendIfRoom(chunk, on: queue) == false)
    #expect(try queue.currentMessages == 4 && queue.currentBytes == 4096)
    // A timed send gives up.
    expectIPCError(.busy) { try queue.send(chunk, timeout: .milliseconds(50)) }
    // A message larger than the whole queue can never be sent: refused at once.
    expectIPCError(.outOfRange) { try queue.send([UInt8](repeating: 0, count: 5000)) }
    // Larger than maxMessageSize: refused before any system call.
    expectIPCError(.outOfRange) { try queue.send([UInt8](repeating: 0, count: 8193)) }
    // A receiver with a smaller bound leaves a long message queued, or cuts it.
    let small = try MessageQueue(id: queue.id, maxMessageSize: 100)
    expectIPCError(.outOfRange) { try small.receive(block: false) }
    #expect(try queue.currentMessages == 4)
    // MessageQueueLimits.md: cutting a long message.
    let (cut, _) = try small.receive(block: false, options: .truncate)  // the first 100 bytes
    #expect(cut.count == 100)
    #expect(try queue.currentMessages == 3)
  }
}

@Suite("Documentation examples: async/await")
struct DocumentationExamplesAsyncAwait {
  @Test func serverAndClient() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    // The server is a new task: it starts, and resumes after its msgrcv, only when a Swift
    // concurrency thread is free. While `swift test` starts its ~340 tests on a 2-core machine,
    // every test queued before it runs first: a full run measured the server starting 5.1 s
    // after the client sent (it then answered in 0.2 ms). 30 s covers that queue.
    let server = Task { try await reverseServer(queue) }
    // AsyncAwait.md: a client.
    try await queue.send("stressed", type: 1)
    let (reply, _) = try await queue.receive(type: 2, timeout: .seconds(30))
    // String(decoding: reply, as: UTF8.self) == "desserts"
    #expect(String(decoding: reply, as: UTF8.self) == "desserts")
    // AsyncAwait.md: stopping the server.
    server.cancel()
    try await server.value  // the sequence ends: no error
    #expect(try queue.currentMessages == 0)
  }

  @Test func removalEndsTheServer() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let server = Task { try await reverseServer(queue) }
    try await queue.send("abc", type: 1)
    // 30 s: the server task may wait for a free thread, as in serverAndClient.
    #expect(try await queue.receive(type: 2, timeout: .seconds(30)).message == Array("cba".utf8))
    try queue.remove()
    try await server.value
  }

  @Test(.timingSensitive) func cancellingAReceive() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let clock = ContinuousClock()
    // AsyncAwait.md: cancelling a receive.
    let listener = Task { try await queue.receive(type: 9) }
    // What is timed is the wait in the kernel: from cancel() to the moment no thread waits in
    // msgrcv on this queue, watched from a thread of its own. Neither when the listener starts
    // nor when the tasks run again is counted: ~340 tests start at once on 2 cooperative
    // threads, and a task has waited seconds for one (5 s to start; 1.5 s to run on).
    try await waitUntil("the listener waits in msgrcv") {
      aThreadWaits(in: "msgrcv", on: queue.id)
    }
    let queueID = queue.id
    let start = clock.now
    listener.cancel()
    let waitEnded = StartedThread { () -> Duration in
      while aThreadWaits(in: "msgrcv", on: queueID) { usleep(500) }
      return clock.now - start
    }
    let error = await #expect(throws: IPCError.self) { try await listener.value }
    #expect(error?.isCancellation == true)
    // A sanitizer slows everything 5–15×: the bound grows with it.
    #expect(try await waitEnded.value < .milliseconds(underSanitizer ? 5000 : 500))
  }
}

@Suite("Documentation examples: shared memory lifetimes")
struct DocumentationExamplesSharedMemoryLifetimes {
  @Test func removedWhileAttached() throws {
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 64)
    defer { try? memory.remove() }
    let other = try SharedMemory.attach(id: memory.id)
    try other.write("still here")
    // LifetimesAndCleanup.md: removing an attached segment.
    try memory.remove()
    // Attached processes keep using it; the key is free again, and the kernel destroys the
    // segment at its last detach.
    let text = String(decoding: try other.read(count: 10), as: UTF8.self)  // "still here"
    #expect(text == "still here")
    let status = try other.status()
    #expect(status.isMarkedForRemoval && status.key == .private && status.numberAttached == 2)
    try other.detach()
    try memory.detach()
    expectIPCError(.existential) { try SharedMemory.attach(id: memory.id) }
  }

  @Test func findingLeftovers() throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    // LifetimesAndCleanup.md: this user's objects.
    let mine = try IPCSystem.objects().filter { $0.cuid == geteuid() }
    #expect(mine.contains { $0.kind == .messageQueue && $0.id == queue.id && $0.key == queue.key })
  }

  @Test func landingPage() throws {
    // SysVIPC.md: the landing page's example.
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }
    try lock.withAcquired {
      // One process at a time.
    }
    #expect(try lock.value == 1)
  }
}
