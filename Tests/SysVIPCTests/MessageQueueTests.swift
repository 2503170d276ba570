import Foundation
import Synchronization
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A new message queue at a random key, removed by the caller's `defer`.
func makeMessageQueue(mode: IPCPermissions = 0o600, maxMessageSize: Int = 2048) throws
  -> MessageQueue
{
  try MessageQueue(key: nil, flags: .createExclusive, mode: mode, maxMessageSize: maxMessageSize)
}

/// A System V message-queue limit from /proc/sys/kernel (`msgmax`, `msgmnb`).
func messageQueueLimit(_ name: String) throws -> Int {
  let text = try String(contentsOfFile: "/proc/sys/kernel/\(name)", encoding: .utf8)
  return try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
}

/// Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff), which raising a queue's
/// maxSize above msgmnb needs.
var hasSysResourceCapability: Bool {
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
    let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16)
  else { return false }
  return mask & (1 << 24) != 0
}

/// A flag one thread raises for another.
private final class StartFlag: Sendable {
  let value = Atomic<Bool>(false)
}

/// `count` bytes of a recognisable pattern.
func messagePattern(_ count: Int, seed: Int = 0) -> [UInt8] {
  (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &+ 7) }
}

@Suite("MessageQueue: the reference's behaviour")
struct MessageQueueTests {
  @Test func createExclusiveThenOpenThenClash() throws {
    let created = try makeMessageQueue()
    defer { try? created.remove() }
    #expect(created.key != .private)
    #expect(created.id >= 0)
    #expect(created.maxMessageSize == 2048)

    let opened = try MessageQueue(key: created.key)
    #expect(opened.id == created.id)
    expectIPCError(.existential) { try MessageQueue(key: created.key, flags: .createExclusive) }
    let orCreated = try MessageQueue(key: created.key, flags: .create)
    #expect(orCreated.id == created.id)

    // Through one handle, out through another: the same kernel object.
    try created.send("through the key")
    #expect(try opened.receive(block: false).message == Array("through the key".utf8))
  }

  @Test func createFlagCreatesWhenMissing() throws {
    let probe = try makeMessageQueue()
    let key = probe.key
    try probe.remove()
    expectIPCError(.existential) { try MessageQueue(key: key) }
    let created = try MessageQueue(key: key, flags: .create, mode: 0o640)
    defer { try? created.remove() }
    #expect(try created.mode == 0o640)
    let again = try MessageQueue(key: key, flags: .create)
    #expect(again.id == created.id)
  }

  @Test func privateKey() throws {
    let a = try MessageQueue(key: .private, flags: .create)
    defer { try? a.remove() }
    let b = try MessageQueue(key: .private, flags: .create)
    defer { try? b.remove() }
    #expect(a.id != b.id)
    #expect(a.key == .private)
    expectIPCError(.invalidArgument) { try MessageQueue(key: .private) }
  }

  @Test func randomKeysDiffer() throws {
    let a = try makeMessageQueue()
    defer { try? a.remove() }
    let b = try makeMessageQueue()
    defer { try? b.remove() }
    #expect(a.key != b.key)
    #expect(a.key.rawValue > 0)
    #expect(b.key.rawValue > 0)
  }

  @Test func badCreationArgumentsAreRefused() throws {
    expectIPCError(.invalidArgument) { try MessageQueue(key: nil) }
    expectIPCError(.invalidArgument) { try MessageQueue(key: nil, flags: .create) }
    expectIPCError(.invalidArgument) { try MessageQueue(key: 1234, flags: .exclusive) }
    expectIPCError(.invalidArgument) {
      try MessageQueue(key: nil, flags: .createExclusive, mode: 0o1600)
    }
    #if os(Linux)
      expectIPCError(.invalidArgument) {
        try MessageQueue(key: nil, flags: [.createExclusive, .hugePages])
      }
    #endif
    // A bad maxMessageSize is refused before the queue is created: nothing is left behind.
    let probe = try makeMessageQueue()
    let key = probe.key
    try probe.remove()
    for size in [0, -1, Int.min, Int.max] {
      let error = expectIPCError(.invalidArgument) {
        try MessageQueue(key: key, flags: .createExclusive, maxMessageSize: size)
      }
      #expect(error?.message.contains("maxMessageSize") == true)
    }
    expectIPCError(.existential) { try MessageQueue(key: key) }
  }

  @Test func openByID() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let byID = try MessageQueue(id: queue.id)
    #expect(byID.key == queue.key)
    #expect(byID.id == queue.id)
    #expect(byID.maxMessageSize == 2048)
    #expect(try MessageQueue(id: queue.id, maxMessageSize: 10).maxMessageSize == 10)
    expectIPCError(.invalidArgument) { try MessageQueue(id: queue.id, maxMessageSize: 0) }
    try queue.send([1, 2, 3])
    #expect(try byID.receive(block: false).message == [1, 2, 3])
  }

  @Test func sendAndReceiveInOrder() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    for word in ["one", "two", "three"] { try queue.send(word) }
    for word in ["one", "two", "three"] {
      let (message, type) = try queue.receive()
      #expect(String(decoding: message, as: UTF8.self) == word)
      #expect(type == 1, "the default type is 1")
    }
    #expect(try queue.currentMessages == 0)
  }

  @Test func typesOnSendAndReceive() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    for (text, type) in [("a", 3), ("b", 1), ("c", 2), ("d", 1), ("e", 5), ("f", Int.max)] {
      try queue.send(text, type: type)
    }
    // > 0: the first message of that type.
    var received = try queue.receive(type: 1)
    #expect(received.message == Array("b".utf8) && received.type == 1)
    received = try queue.receive(type: 2)
    #expect(received.message == Array("c".utf8) && received.type == 2)
    received = try queue.receive(type: Int.max)
    #expect(received.message == Array("f".utf8) && received.type == Int.max)
    // 0: the first message, whatever its type.
    received = try queue.receive(type: 0)
    #expect(received.message == Array("a".utf8) && received.type == 3)
    received = try queue.receive()
    #expect(received.message == Array("d".utf8) && received.type == 1)
    // No message of a type: busy, and the others stay.
    expectIPCError(.busy) { try queue.receive(block: false, type: 4) }
    #expect(try queue.currentMessages == 1)
  }

  @Test func negativeTypeTakesTheLowestTypeUpToItsMagnitude() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    for (text, type) in [("five", 5), ("three", 3), ("four", 4), ("two", 2), ("three again", 3)] {
      try queue.send(text, type: type)
    }
    var order: [String] = []
    for _ in 0..<4 {
      let (message, type) = try queue.receive(block: false, type: -4)
      #expect(type <= 4)
      order.append(String(decoding: message, as: UTF8.self))
    }
    #expect(order == ["two", "three", "three again", "four"])
    // Only type 5 is left, above |−4|.
    expectIPCError(.busy) { try queue.receive(block: false, type: -4) }
    let last = try queue.receive(block: false, type: -5)
    #expect(last.type == 5)
    // Int.min: the kernel reads it as "any type ≤ LONG_MAX".
    try queue.send("x", type: 9)
    try queue.send("y", type: 7)
    #expect(try queue.receive(block: false, type: Int.min).type == 7)
    #expect(try queue.receive(block: false, type: Int.min).type == 9)
  }

  @Test func nonBlockingSendUntilBusy() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(100)
    #expect(try queue.maxSize == 100)
    let message = messagePattern(10)
    for _ in 0..<10 { try queue.send(message, block: false) }
    #expect(try queue.currentMessages == 10)
    #expect(try queue.currentBytes == 100)
    let error = expectIPCError(.busy) { try queue.send(message, block: false) }
    #expect(error?.message.contains("msgsnd on message queue \(queue.id)") == true)
    expectIPCError(.busy) { try queue.send(message, timeout: .zero) }
    #expect(try queue.currentMessages == 10, "nothing was added")
    // Room again after a receive.
    _ = try queue.receive()
    try queue.send(message, block: false)
    #expect(try queue.currentMessages == 10)
  }

  @Test func nonBlockingReceiveIsBusy() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let error = expectIPCError(.busy) { try queue.receive(block: false) }
    #expect(error?.message.contains("msgrcv on message queue \(queue.id)") == true)
    expectIPCError(.busy) { try queue.receive(timeout: .zero) }
    var buffer = [UInt8](repeating: 0, count: 16)
    _ = buffer.withUnsafeMutableBytes { raw in
      expectIPCError(.busy) { try queue.receive(into: raw, block: false) }
    }
    #expect(try queue.lastReceiveTime == nil, "a failed receive is no receive")
  }

  @Test func nulBytesAndUTF8() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let binary: [UInt8] = [0, 0, 65, 0, 255, 0]
    try queue.send(binary)
    #expect(try queue.receive().message == binary)

    let text = "héllo, wörld — ✓ 🎉 ∑ 日本"
    try queue.send(text, type: 8)
    let (message, type) = try queue.receive()
    #expect(type == 8)
    #expect(message.count == text.utf8.count)
    #expect(String(decoding: message, as: UTF8.self) == text)

    try queue.send("a\u{0}b")
    #expect(try queue.receive().message == [97, 0, 98])

    // Empty messages are messages too.
    try queue.send([UInt8]())
    try queue.send("")
    #expect(try queue.currentMessages == 2)
    #expect(try queue.receive().message.isEmpty)
    #expect(try queue.receive().message.isEmpty)
  }

  @Test func maxMessageSizeIsRespected() throws {
    let queue = try makeMessageQueue(maxMessageSize: 16)
    defer { try? queue.remove() }
    #expect(queue.maxMessageSize == 16)
    try queue.send(messagePattern(16))
    let error = expectIPCError(.outOfRange) { try queue.send(messagePattern(17)) }
    #expect(error?.message.contains("maxMessageSize") == true)
    expectIPCError(.outOfRange) { try queue.send(String(repeating: "é", count: 9)) }  // 18 bytes
    #expect(try queue.currentMessages == 1, "nothing over the bound was sent")
    #expect(try queue.receive().message == messagePattern(16))

    // A longer message from a handle with a larger bound: receive() refuses it and the
    // message stays queued; .truncate cuts it to the bound.
    let wide = try MessageQueue(id: queue.id, maxMessageSize: 64)
    try wide.send(messagePattern(40), type: 3)
    let tooLong = expectIPCError(.outOfRange) { try queue.receive() }
    #expect(tooLong?.message.contains("stays queued") == true)
    #expect(try queue.currentMessages == 1)
    let cut = try queue.receive(options: .truncate)
    #expect(cut.message == messagePattern(16))
    #expect(cut.type == 3)
    #expect(try queue.currentMessages == 0)
  }

  @Test func removeThenEverythingIsExistential() throws {
    let queue = try makeMessageQueue()
    try queue.send("left behind")
    try queue.remove()
    expectIPCError(.existential) { try queue.send("x") }
    expectIPCError(.existential) { try queue.receive(block: false) }
    expectIPCError(.existential) { try queue.currentMessages }
    expectIPCError(.existential) { try queue.setMaxSize(100) }
    expectIPCError(.existential) { try MessageQueue(id: queue.id) }
    expectIPCError(.existential) { try MessageQueue(key: queue.key) }
    expectIPCError(.existential) { try queue.remove() }

    let other = try makeMessageQueue()
    try MessageQueue.remove(id: other.id)
    expectIPCError(.existential) { try other.status() }
    expectIPCError(.existential) { try MessageQueue.remove(id: other.id) }
  }

  @Test func attributesBeforeAndAfterTraffic() throws {
    let before = Date()
    let queue = try makeMessageQueue(mode: 0o640)
    defer { try? queue.remove() }
    #expect(try queue.uid == geteuid())
    #expect(try queue.gid == getegid())
    #expect(try queue.cuid == geteuid())
    #expect(try queue.cgid == getegid())
    #expect(try queue.mode == 0o640)
    #expect(try queue.maxSize == (try messageQueueLimit("msgmnb")))
    #expect(try queue.currentMessages == 0)
    #expect(try queue.currentBytes == 0)
    #expect(try queue.lastSendTime == nil)
    #expect(try queue.lastReceiveTime == nil)
    #expect(try queue.lastSendPID == 0)
    #expect(try queue.lastReceivePID == 0)
    let created = try #require(try queue.lastChangeTime)
    #expect(abs(created.timeIntervalSince(before)) < 5)

    try queue.send(messagePattern(33))
    let sent = try #require(try queue.lastSendTime)
    #expect(abs(sent.timeIntervalSinceNow) < 5)
    #expect(try queue.lastSendPID == getpid())
    #expect(try queue.lastReceiveTime == nil)
    #expect(try queue.lastReceivePID == 0)
    #expect(try queue.currentMessages == 1)
    #expect(try queue.currentBytes == 33)

    _ = try queue.receive()
    let received = try #require(try queue.lastReceiveTime)
    #expect(abs(received.timeIntervalSinceNow) < 5)
    #expect(try queue.lastReceivePID == getpid())
    #expect(try queue.currentMessages == 0)
    #expect(try queue.currentBytes == 0)

    try queue.setMode(0o600)
    #expect(try queue.mode == 0o600)
    try queue.setOwner(uid: geteuid(), gid: getegid())
    expectIPCError(.invalidArgument) { try queue.setMode(0o4000) }
    try queue.setMaxSize(4096)
    #expect(try queue.mode == 0o600, "setMaxSize keeps the mode")
    try queue.setMode(0o660)
    #expect(try queue.maxSize == 4096, "setMode keeps the size")

    let status = try queue.status()
    #expect(status.key == queue.key)
    #expect(status.id == queue.id)
    #expect(status.mode == 0o660)
    #expect(status.uid == geteuid())
    #expect(status.gid == getegid())
    #expect(status.cuid == geteuid())
    #expect(status.cgid == getegid())
    #expect(status.maxSize == 4096)
    #expect(status.currentMessages == 0)
    #expect(status.currentBytes == 0)
    #expect(status.lastSendPID == getpid())
    #expect(status.lastReceivePID == getpid())
    #expect(status.lastSendTime != nil)
    #expect(status.lastReceiveTime != nil)
    #expect(status.lastChangeTime != nil)
  }

  @Test func messageCountGoesUpAndDown() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    var bytes = 0
    for n in 1...5 {
      try queue.send(messagePattern(n * 10, seed: n), type: n)
      bytes += n * 10
      #expect(try queue.currentMessages == n)
      #expect(try queue.currentBytes == bytes)
    }
    for n in 1...5 {
      let (message, type) = try queue.receive()
      #expect(type == n)
      #expect(message == messagePattern(n * 10, seed: n))
      bytes -= n * 10
      #expect(try queue.currentMessages == 5 - n)
      #expect(try queue.currentBytes == bytes)
    }
  }

  @Test func errorMessagesNameOperationAndObject() throws {
    let queue = try makeMessageQueue()
    try queue.remove()
    let error = expectIPCError(.existential) { try queue.send("x") }
    #expect(error?.message.contains("msgsnd on message queue \(queue.id)") == true)
    #expect(error?.errno != nil)
    let receiveError = expectIPCError(.existential) { try queue.receive(block: false) }
    #expect(receiveError?.message.contains("msgrcv on message queue \(queue.id)") == true)
  }
}

@Suite("MessageQueue: beyond the reference")
struct MessageQueueExtraTests {
  @Test func receiveTimeoutExpiresAfterItsDuration() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let (error, seconds) = try await onThread {
      elapsed { expectIPCError(.busy) { try queue.receive(timeout: .milliseconds(300)) } }
    }
    #expect(seconds >= 0.29, "returned after \(seconds) s")
    #expect(seconds < 3, "returned after \(seconds) s")
    #expect(error?.message.contains("timed out") == true)
  }

  @Test func sendTimeoutOnAFullQueueExpires() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(8)
    try await queue.send(messagePattern(8))
    let (error, seconds) = try await onThread {
      elapsed {
        expectIPCError(.busy) { try queue.send(messagePattern(8), timeout: .milliseconds(300)) }
      }
    }
    #expect(seconds >= 0.29, "returned after \(seconds) s")
    #expect(seconds < 3, "returned after \(seconds) s")
    #expect(error?.message.contains("timed out") == true)
    #expect(try queue.currentMessages == 1)
  }

  @Test func timedReceiveTakesAMessageThatArrivesDuringTheWait() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let started = StartFlag()
    async let waited = onThread {
      started.value.store(true, ordering: .releasing)
      return try elapsed { try queue.receive(type: 6, timeout: .seconds(60)) }
    }
    // The receiver's polling is invisible to the kernel: wait until it is about to start.
    try await waitUntil("the receiving thread started") { started.value.load(ordering: .acquiring) }
    try await queue.send("not this one", type: 1)
    try await queue.send("this one", type: 6)
    let (received, seconds) = try await waited
    #expect(received.message == Array("this one".utf8))
    #expect(received.type == 6)
    #expect(seconds < 30)
    #expect(try queue.currentMessages == 1)
  }

  @Test func timeoutsAreCheckedAndIgnoredWithoutBlocking() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    expectIPCError(.invalidArgument) { try queue.receive(timeout: .milliseconds(-1)) }
    expectIPCError(.invalidArgument) { try queue.send("x", timeout: .seconds(-1)) }
    #expect(try queue.currentMessages == 0, "a refused send sends nothing")
    // block: false never waits, whatever the timeout.
    let (_, seconds) = elapsed {
      expectIPCError(.busy) { try queue.receive(block: false, timeout: .seconds(30)) }
    }
    #expect(seconds < 1)
  }

  @Test func truncateCutsOnlyWhatDoesNotFit() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let long = messagePattern(100)
    try queue.send(long)
    var small = [UInt8](repeating: 0, count: 10)
    let refused = small.withUnsafeMutableBytes { raw in
      expectIPCError(.outOfRange) { try queue.receive(into: raw) }
    }
    #expect(refused?.message.contains("10-byte buffer") == true)
    #expect(try queue.currentMessages == 1, "E2BIG keeps the message queued")
    let cut = try small.withUnsafeMutableBytes { raw in
      try queue.receive(into: raw, options: .truncate)
    }
    #expect(cut.count == 10)
    #expect(small == Array(long.prefix(10)))
    #expect(try queue.currentMessages == 0, "the rest of a cut message is gone")

    // A buffer that holds the text but not text + type: nothing is cut.
    try queue.send(long)
    var snug = [UInt8](repeating: 0, count: 104)
    let whole = try snug.withUnsafeMutableBytes { raw in
      try queue.receive(into: raw, options: .truncate)
    }
    #expect(whole.count == 100)
    #expect(Array(snug.prefix(100)) == long)
  }

  @Test func exceptTypeTakesAnyOtherType() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    for (text, type) in [("a", 1), ("b", 1), ("c", 2), ("d", 3)] {
      try queue.send(text, type: type)
    }
    var received = try queue.receive(block: false, type: 1, options: .exceptType)
    #expect(received.message == Array("c".utf8) && received.type == 2)
    received = try queue.receive(block: false, type: 1, options: .exceptType)
    #expect(received.message == Array("d".utf8) && received.type == 3)
    expectIPCError(.busy) { try queue.receive(block: false, type: 1, options: .exceptType) }
    #expect(try queue.currentMessages == 2)
    received = try queue.receive(block: false, type: 2, options: .exceptType)
    #expect(received.message == Array("a".utf8) && received.type == 1)
    // The kernel would ignore MSG_EXCEPT with type 0 or < 0: refused instead.
    expectIPCError(.invalidArgument) { try queue.receive(block: false, options: .exceptType) }
    expectIPCError(.invalidArgument) {
      try queue.receive(block: false, type: -3, options: .exceptType)
    }
    #expect(try queue.currentMessages == 1)
  }

  @Test func sendsFromRawBuffersDataAndOtherSequences() throws {
    let queue = try makeMessageQueue(maxMessageSize: 64)
    defer { try? queue.remove() }
    let bytes = messagePattern(50)
    try bytes.withUnsafeBytes { raw in try queue.send(raw, type: 2) }
    try queue.send(Data(bytes), type: 3)
    try queue.send(bytes[10..<20], type: 4)
    try queue.send((0..<50).lazy.map { UInt8($0) }, type: 5)
    try queue.send(repeatElement(UInt8(9), count: 64), type: 6)
    #expect(try queue.receive() == (bytes, 2))
    #expect(try queue.receive() == (bytes, 3))
    #expect(try queue.receive() == (Array(bytes[10..<20]), 4))
    #expect(try queue.receive() == ((0..<50).map { UInt8($0) }, 5))
    #expect(try queue.receive() == ([UInt8](repeating: 9, count: 64), 6))

    // Sequences without a count are read no further than one byte past the bound, so even an
    // endless one fails instead of hanging.
    let endless = (0...).lazy.map { UInt8(truncatingIfNeeded: $0) }
    let error = expectIPCError(.outOfRange) { try queue.send(endless) }
    #expect(error?.message.contains("more than 64 bytes") == true)
    expectIPCError(.outOfRange) { try queue.send(repeatElement(UInt8(1), count: 65)) }
    #expect(try queue.currentMessages == 0)
  }

  @Test(arguments: [
    // (message length, buffer size)
    (5, 13),  // fits in place: the type in the first 8 bytes, the text after
    (5, 12), (5, 6), (5, 5),  // fits the buffer but not after the type: the stack fallback
    (3, 4), (0, 0), (0, 8),  // buffers smaller than the type
    (1000, 1008), (1000, 1000),
    (8192, 8200), (8192, 8192), (8192, 9000),  // msgmax: the largest stack fallback
  ])
  func receiveIntoABuffer(length: Int, capacity: Int) throws {
    let queue = try makeMessageQueue(maxMessageSize: 8192)
    defer { try? queue.remove() }
    let message = messagePattern(length, seed: capacity)
    try queue.send(message, type: 77)
    try queue.send([42], type: 78)
    var buffer = [UInt8](repeating: 0xEE, count: capacity)
    let received = try buffer.withUnsafeMutableBytes { raw in try queue.receive(into: raw) }
    #expect(received.count == length)
    #expect(received.type == 77)
    #expect(Array(buffer.prefix(length)) == message)
    #expect(try queue.receive(block: false) == ([42], 78), "the next message is intact")
  }

  @Test(arguments: [(5, 4), (9, 8), (100, 99), (8192, 8191), (1, 0)])
  func receiveIntoATooSmallBufferLosesNothing(length: Int, capacity: Int) throws {
    let queue = try makeMessageQueue(maxMessageSize: 8192)
    defer { try? queue.remove() }
    let message = messagePattern(length)
    try queue.send(message, type: 3)
    var buffer = [UInt8](repeating: 0, count: capacity)
    buffer.withUnsafeMutableBytes { raw in
      expectIPCError(.outOfRange) { try queue.receive(into: raw, block: false) }
      expectIPCError(.outOfRange) { try queue.receive(into: raw, timeout: .seconds(5)) }
    }
    #expect(try queue.currentMessages == 1)
    #expect(try queue.receive() == (message, 3))
  }

  @Test func badMessageTypesAreRefused() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    for type in [0, -1, Int.min] {
      let error = expectIPCError(.invalidArgument) { try queue.send("x", type: type) }
      #expect(error?.message.contains("type") == true)
      expectIPCError(.invalidArgument) { try queue.send([1, 2], type: type) }
      expectIPCError(.invalidArgument) {
        try queue.send(repeatElement(UInt8(1), count: 2), type: type)
      }
    }
    #expect(try queue.currentMessages == 0)
  }

  @Test func messagesAboveMsgmaxAreRefusedAtOnce() throws {
    let msgmax = try messageQueueLimit("msgmax")
    let queue = try makeMessageQueue(maxMessageSize: msgmax * 4)
    defer { try? queue.remove() }
    try queue.send(messagePattern(msgmax))
    let error = expectIPCError(.outOfRange) { try queue.send(messagePattern(msgmax + 1)) }
    #expect(error?.message.contains("msgmax") == true)
    expectIPCError(.outOfRange) { try queue.send(repeatElement(UInt8(0), count: msgmax + 1)) }
    #expect(try queue.currentMessages == 1)
    #expect(try queue.receive().message == messagePattern(msgmax))
  }

  @Test func messagesAboveTheQueueCapacityFailAtOnceInsteadOfWaitingForever() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(64)
    try await queue.send(messagePattern(60))
    // Blocking, timed and non-blocking sends of a message that can never fit: outOfRange, at
    // once, whether the queue is empty or not.
    let (_, seconds) = try await onThread {
      elapsed {
        let error = expectIPCError(.outOfRange) { try queue.send(messagePattern(65)) }
        #expect(error?.message.contains("capacity") == true)
        expectIPCError(.outOfRange) { try queue.send(messagePattern(65), timeout: .seconds(30)) }
        expectIPCError(.outOfRange) { try queue.send(messagePattern(65), block: false) }
      }
    }
    #expect(seconds < 5)
    _ = try await queue.receive()
    expectIPCError(.outOfRange) { try queue.send(messagePattern(65)) }
    try await queue.send(messagePattern(64))
    #expect(try queue.currentMessages == 1)

    // A capacity of 0 holds nothing, not even an empty message.
    _ = try await queue.receive()
    try queue.setMaxSize(0)
    expectIPCError(.outOfRange) { try queue.send([UInt8]()) }
  }

  @Test func receiveCopesWithALargeMaxMessageSize() throws {
    let queue = try makeMessageQueue(maxMessageSize: 1 << 40)
    defer { try? queue.remove() }
    let msgmax = try messageQueueLimit("msgmax")
    try queue.send(messagePattern(msgmax))
    #expect(try queue.receive().message == messagePattern(msgmax))
  }

  @Test func setMaxSizeChecksItsArgumentAndTheCapability() throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let msgmnb = try messageQueueLimit("msgmnb")
    expectIPCError(.invalidArgument) { try queue.setMaxSize(-1) }
    try queue.setMaxSize(msgmnb / 2)
    #expect(try queue.maxSize == msgmnb / 2)
    if hasSysResourceCapability {
      try queue.setMaxSize(msgmnb + 1)
      #expect(try queue.maxSize == msgmnb + 1)
    } else {
      // Root without CAP_SYS_RESOURCE (as in many containers) may not raise it either.
      expectIPCError(.permissions) { try queue.setMaxSize(msgmnb + 1) }
      #expect(try queue.maxSize == msgmnb / 2)
    }
  }
}
