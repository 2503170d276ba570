// The examples of the article "Getting Started" (SysVIPC.docc/GettingStarted.md), compiled and
// run.
//
// The article's two programs run here in one test process: the "second program" is a second
// thread with handles of its own (its own attachment of the segment, its own semaphore and
// queue values), opened by key exactly as a separate process would. The package's multi-process
// tests (SharedMemoryProcessTests, MessageQueueProcessTests) run the same calls in real
// processes.
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// GettingStarted.md: the second program opens both objects by key.
/// Opens the segment and the lock that the first program created.
func openCounter(memoryKey: IPCKey, lockKey: IPCKey) throws(IPCError) -> (
  memory: SharedMemory, lock: SysVIPC.Semaphore
) {
  let memory = try SharedMemory(key: memoryKey)
  let lock = try SysVIPC.Semaphore(key: lockKey)
  return (memory, lock)
}

// GettingStarted.md: both programs update the counter under the lock.
/// Adds 1 to the counter kept in the segment's first 8 bytes. The lock makes the read and the
/// write one step: no other process sees, or makes, an update in between.
func increment(_ memory: SharedMemory, lock: SysVIPC.Semaphore) throws {
  try lock.withAcquired(timeout: .seconds(10)) {
    try memory.withUnsafeMutableBytes { bytes in
      let count = bytes.load(as: Int.self)
      bytes.storeBytes(of: count + 1, as: Int.self)
    }
  }
}

// GettingStarted.md: the client asks.
/// Sends `text` as a request (type 1), prefixed with the type the answer should have, and
/// waits up to 10 seconds for that answer.
func ask(_ text: String, on queue: MessageQueue, replyType: Int) throws(IPCError) -> String {
  try queue.send("\(replyType) \(text)", type: 1)
  let (reply, _) = try queue.receive(type: replyType, timeout: .seconds(10))
  return String(decoding: reply, as: UTF8.self)
}

// GettingStarted.md: the server answers.
/// Takes one request (type 1) and answers it in capitals, with the type the client asked for.
func answerOneRequest(on queue: MessageQueue) throws(IPCError) {
  let (request, _) = try queue.receive(type: 1)
  let text = String(decoding: request, as: UTF8.self)
  guard let space = text.firstIndex(of: " "), let replyType = Int(text[..<space]), replyType > 1
  else { return }  // not a request of ours: drop it
  try queue.send(text[text.index(after: space)...].uppercased(), type: replyType)
}

@Suite("Documentation examples: getting started")
struct DocumentationExamplesGettingStarted {
  @Test func twoProgramsShareACounter() async throws {
    // GettingStarted.md: the first program creates both objects.
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096, initCharacter: 0)
    defer { try? memory.remove() }
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }
    // Tell the second program both keys: print them, pass them as arguments, or write a file.
    let keys = "memory=\(memory.key.rawValue) lock=\(lock.key.rawValue)"

    #expect(keys.hasPrefix("memory=") && !keys.contains("memory=0 "))
    let memoryKey = memory.key
    let lockKey = lock.key
    // The second program, on a thread of its own.
    let second = Task {
      try await onThread {
        let (memory, lock) = try openCounter(memoryKey: memoryKey, lockKey: lockKey)
        for _ in 0..<1000 { try increment(memory, lock: lock) }
      }
    }
    try await onThread { for _ in 0..<1000 { try increment(memory, lock: lock) } }
    try await second.value
    let total = try memory.withUnsafeBytes { $0.load(as: Int.self) }
    #expect(total == 2000)
    #expect(try lock.value == 1)
  }

  @Test func requestAndReply() async throws {
    // GettingStarted.md: the queue.
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }

    // The server, a second program that opened the queue by key, on a thread of its own,
    // started at once (a task would wait for a free cooperative thread first).
    let key = queue.key
    let server = StartedThread {
      let queue = try MessageQueue(key: key)
      try answerOneRequest(on: queue)
      try answerOneRequest(on: queue)
    }
    // The client blocks in msgrcv until the server answers: on a thread of its own too, never
    // on one of Swift concurrency's threads, which the server's task needs to start (with all
    // of them blocked, other tests stall until a timeout).
    let answer = try await onThread {
      // GettingStarted.md: asking.
      let answer = try ask("hello", on: queue, replyType: Int(getpid()) + 1)
      // answer == "HELLO"
      return answer
    }
    #expect(answer == "HELLO")
    #expect(try await onThread { try ask("again", on: queue, replyType: 7) } == "AGAIN")
    try await server.value
    #expect(try queue.currentMessages == 0)
  }
}
