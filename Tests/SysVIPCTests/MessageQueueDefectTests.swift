import Foundation
import SysVIPC
import Testing

/// Regression tests for issue 18's message queue items (1, 11, 13) and IPCKey (7): each failed
/// before its fix.
@Suite("MessageQueue and key defects (issue 18)")
struct MessageQueueDefectTests {
  // Item 1: an impossible capacity is an error, never a trap.
  @Test func absurdBufferCapacitiesAreErrors() throws {
    for capacity in [1 << 40, Int.max / 2, Int.max / 2 + 1, Int.max] {
      let error = expectIPCError(.outOfRange) {
        _ = try MessageQueue.MessageBuffer(capacity: capacity)
      }
      #expect(error?.message.contains("\(capacity)") == true, "\(String(describing: error))")
    }
    expectIPCError(.invalidArgument) { _ = try MessageQueue.MessageBuffer(capacity: -1) }
    let msgmax = try #require(try IPCSystem.limits().msgmax)
    let largest = try MessageQueue.MessageBuffer(capacity: msgmax)
    #expect(largest.capacity == msgmax)
    expectIPCError(.outOfRange) { _ = try MessageQueue.MessageBuffer(capacity: msgmax + 1) }
  }

  // Item 13: the async send names the message's real length.
  @Test func asyncSendNamesTheRealLength() async throws {
    let queue = try makeMessageQueue(maxMessageSize: 2048)
    defer { try? queue.remove() }
    let bytes = [UInt8](repeating: 0x61, count: 3000)
    for attempt in 0..<2 {
      do {
        if attempt == 0 {
          try await queue.send(bytes)
        } else {
          try await queue.send(String(repeating: "a", count: 3000))
        }
        Issue.record("a message over maxMessageSize was sent")
      } catch {
        #expect(error.kind == .outOfRange)
        #expect(error.message.contains("3000 bytes"), "\(error)")
      }
    }
    // A sequence without contiguous storage: "more than" the limit.
    do {
      try await queue.send(repeatElement(UInt8(0x61), count: 3000))
      Issue.record("a message over maxMessageSize was sent")
    } catch {
      #expect(error.message.contains("more than 2048 bytes"), "\(error)")
    }
    #expect(try queue.currentMessages == 0)
  }

  // Item 11: opening by id does not need read access; sending needs only write access.
  @Test(.enabled(if: isRoot, "needs root to create a queue that nobody may write but not read"))
  func nobodySendsOnAWriteOnlyQueueOpenedByID() async throws {
    let queue = try makeMessageQueue(mode: 0o622)
    defer { try? queue.remove() }
    let send = try await HelperProcess.run(
      ["--as-nobody", "mq-send", String(queue.id), "from nobody", "--type", "3"])
    #expect(send.value("privileges") == "dropped", "\(send.output)")
    #expect(send.ok, "\(send.output)")
    #expect(send.value("sent") == "yes", "\(send.output)")
    let received = try await queue.receive(block: false)
    #expect(received.message == Array("from nobody".utf8) && received.type == 3)
    // Receiving still needs read access: refused by msgrcv itself.
    let receive = try await HelperProcess.run(
      ["--as-nobody", "mq-receive", String(queue.id), "--no-block"])
    #expect(receive.errorKind == "permissions", "\(receive.output)")
    #expect(receive.output.contains("msgrcv"), "\(receive.output)")
  }

  @Test func openingByIDStillChecksExistenceAndReadsTheKey() throws {
    let queue = try makeMessageQueue()
    let byID = try MessageQueue(id: queue.id)
    #expect(byID.key == queue.key)
    #expect(byID == (try MessageQueue(id: queue.id)))
    try queue.remove()
    expectIPCError(.existential) { try MessageQueue(id: queue.id) }
  }

  // Item 7: a path with a NUL byte is refused, not cut at the NUL.
  @Test func keyPathWithNULIsRefused() throws {
    let error = expectIPCError(.invalidArgument) {
      try IPCKey(path: "/tmp\u{0}garbage", projectID: 1)
    }
    #expect(error?.message.contains("NUL") == true, "\(String(describing: error))")
    #expect(try IPCKey(path: "/tmp", projectID: 1) != .private)
  }
}
