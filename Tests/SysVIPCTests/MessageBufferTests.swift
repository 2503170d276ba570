import SysVIPC
import Testing

@Suite("MessageQueue: MessageBuffer, no copy in user space")
struct MessageBufferTests {
  @Test func sendAndReceiveThroughABuffer() throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: 8192)
    defer { try? queue.remove() }
    var buffer = try MessageQueue.MessageBuffer(capacity: 8192)
    #expect(buffer.count == 0 && buffer.type == 0 && buffer.capacity == 8192)
    let text: [UInt8] = [0, 1, 2, 0, 255]
    buffer.withUnsafeMutableText(count: text.count) { $0.copyBytes(from: text) }
    try queue.send(buffer, type: 7)
    #expect(try queue.currentMessages == 1)
    // Interoperates with the other forms.
    #expect(try queue.receive(block: false) == (text, 7))

    try queue.send("hello", type: 3)
    try queue.receive(into: &buffer, block: false)
    #expect(buffer.count == 5 && buffer.type == 3)
    #expect(buffer.withUnsafeText { Array($0) } == Array("hello".utf8))
    // The count is clamped to the capacity.
    buffer.withUnsafeMutableText(count: 100_000) { #expect($0.count == 8192) }
    buffer.withUnsafeMutableText(count: -1) { #expect($0.count == 0) }
  }

  @Test func aMessageLongerThanTheBufferStaysQueued() throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    try queue.send([UInt8](repeating: 9, count: 10), type: 1)
    var small = try MessageQueue.MessageBuffer(capacity: 4)
    expectIPCError(.outOfRange) { try queue.receive(into: &small, block: false) }
    #expect(try queue.currentMessages == 1, "the message is still queued")
    #expect(small.count == 0)
    try queue.receive(into: &small, block: false, options: .truncate)
    #expect(small.withUnsafeText { Array($0) } == [9, 9, 9, 9])
    expectIPCError(.busy) { try queue.receive(into: &small, block: false) }
    expectIPCError(.busy) { try queue.receive(into: &small, timeout: .milliseconds(50)) }
  }

  @Test func badInputIsRefused() throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: 16)
    defer { try? queue.remove() }
    expectIPCError(.invalidArgument) { _ = try MessageQueue.MessageBuffer(capacity: -1) }
    var big = try MessageQueue.MessageBuffer(capacity: 32)
    big.withUnsafeMutableText(count: 32) { _ = $0.initializeMemory(as: UInt8.self, repeating: 1) }
    expectIPCError(.outOfRange) { try queue.send(big) }
    expectIPCError(.invalidArgument) { try queue.send(big, type: 0) }
    #expect(try queue.currentMessages == 0)
  }
}
