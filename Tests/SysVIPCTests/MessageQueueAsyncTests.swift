import Foundation
import SysVIPC
import Testing

@Suite("MessageQueue: async forms")
struct MessageQueueAsyncTests {
  func makeQueue() throws -> MessageQueue { try MessageQueue(key: nil, flags: .createExclusive) }

  @Test func asyncReceiveWakesOnAHelpersSend() async throws {
    let queue = try makeQueue()
    defer { try? queue.remove() }
    async let received = queue.receive(type: 3)
    let sender = try await HelperProcess.run(["mq-send", "\(queue.id)", "hello", "--type", "3"])
    #expect(sender.ok, "\(sender.output)")
    let (message, type) = try await received
    #expect(message == Array("hello".utf8))
    #expect(type == 3)
  }

  @Test func asyncSendWaitsForRoomAndCancellationSendsNothing() async throws {
    let queue = try makeQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(8)
    try await queue.send([UInt8](repeating: 1, count: 8))
    // Full: a send waits until a receive makes room.
    async let sent: Void = queue.send([2, 2, 2, 2], type: 2)
    try await Task.sleep(for: .milliseconds(50))
    #expect(try queue.currentMessages == 1)
    #expect(try await queue.receive(block: false, type: 1).message.count == 8)
    try await sent
    #expect(try await queue.receive(block: false).message == [2, 2, 2, 2])

    try await queue.send([UInt8](repeating: 1, count: 8))
    let cancelled = Task { try await queue.send([3, 3], type: 3) }
    try await Task.sleep(for: .milliseconds(50))
    cancelled.cancel()
    let result = await cancelled.result
    guard case .failure(let error) = result else {
      Issue.record("a cancelled send succeeded")
      return
    }
    #expect((error as? IPCError)?.isCancellation == true, "\(error)")
    #expect(try queue.currentMessages == 1, "nothing was sent")
  }

  @Test func asyncTimeoutsAndNonBlocking() async throws {
    let queue = try makeQueue()
    defer { try? queue.remove() }
    let clock = ContinuousClock()
    let start = clock.now
    do {
      _ = try await queue.receive(timeout: .milliseconds(200))
      Issue.record("a receive on an empty queue succeeded")
    } catch {
      #expect(error.kind == .busy && !error.isCancellation, "\(error)")
    }
    #expect(clock.now - start >= .milliseconds(190))
    do {
      _ = try await queue.receive(block: false)
      Issue.record("a non-blocking receive on an empty queue succeeded")
    } catch {
      #expect(error.kind == .busy, "\(error)")
    }
    try await queue.send("x", timeout: .seconds(1))
    #expect(try await queue.receive(timeout: .seconds(1)).message == [UInt8(ascii: "x")])
  }

  @Test func messagesAsAnAsyncSequenceEndWhenTheQueueIsRemoved() async throws {
    let queue = try makeQueue()
    defer { try? queue.remove() }
    for i in 1...5 { try await queue.send([UInt8(i)], type: i % 2 == 0 ? 2 : 1) }
    var odd: [UInt8] = []
    for try await (message, type) in queue.messages(type: 1) {
      #expect(type == 1)
      odd += message
      if odd.count == 3 { break }
    }
    #expect(odd == [1, 3, 5])

    let consumer = Task { () throws -> [UInt8] in
      var all: [UInt8] = []
      for try await (message, _) in queue.messages() { all += message }
      return all
    }
    try await waitUntil("the consumer took both waiting messages") {
      try queue.currentMessages == 0
    }
    try queue.remove()
    let all = try await consumer.value
    #expect(all == [2, 4])
  }

  @Test(.timingSensitive) func aCancelledReceiveReturnsWithin50Milliseconds() async throws {
    let queue = try makeQueue()
    defer { try? queue.remove() }
    let outcome = try await HelperProcess.run(["async-cancel-receive", "\(queue.id)"])
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("outcome") == "cancelled", "\(outcome.output)")
    let milliseconds = try #require(Double(outcome.value("cancelMs") ?? ""))
    #expect(milliseconds < 50, "\(outcome.output)")
    try await queue.send("still here")
    #expect(try await queue.receive(block: false).message == Array("still here".utf8))
  }
}
