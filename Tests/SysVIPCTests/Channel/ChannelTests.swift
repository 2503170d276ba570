import Foundation
import SysVIPC
import Testing

@testable import SysVIPCChannel

/// A private channel that goes when the test does, also when it fails.
func withChannel<T>(
  capacity: Int = 8, maxMessageSize: Int = 256, mode: IPCPermissions = 0o600,
  _ body: (MessageChannel) throws -> T
) throws -> T {
  let channel = try MessageChannel.create(
    key: .private, capacity: capacity, maxMessageSize: maxMessageSize, mode: mode)
  defer { try? channel.remove() }
  return try body(channel)
}

func withAsyncChannel<T>(
  capacity: Int = 8, maxMessageSize: Int = 256, mode: IPCPermissions = 0o600,
  _ body: (MessageChannel) async throws -> T
) async throws -> T {
  let channel = try MessageChannel.create(
    key: .private, capacity: capacity, maxMessageSize: maxMessageSize, mode: mode)
  defer { try? channel.remove() }
  return try await body(channel)
}

@Suite("MessageChannel in one process")
struct ChannelTests {
  @Test func sendAndReceiveKeepOrderTypesAndBytes() throws {
    try withChannel { channel in
      try channel.send([1, 2, 3], type: 7)
      try channel.send("héllo", type: 2)
      try channel.send([UInt8](), type: 1)
      #expect(try channel.receive() == ([1, 2, 3], 7))
      let second = try channel.receive()
      #expect(String(decoding: second.message, as: UTF8.self) == "héllo")
      #expect(second.type == 2)
      #expect(try channel.receive() == ([], 1))
    }
  }

  @Test func messagesLargerThanMsgmaxTravel() throws {
    let limits = try IPCSystem.limits()
    let size = (limits.msgmax ?? 8192) * 4
    try withChannel(capacity: 2, maxMessageSize: size) { channel in
      let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13) }
      try channel.send(message)
      #expect(try channel.receive().message == message)
      expectIPCError(.outOfRange) { try channel.send([UInt8](repeating: 0, count: size + 1)) }
    }
  }

  @Test func nonBlockingAndTimedWaitsSayBusy() throws {
    try withChannel(capacity: 2) { channel in
      let empty = expectIPCError(.busy) { try channel.receive(block: false) }
      #expect(empty?.errno == .wouldBlock)
      let (_, waited) = elapsed {
        expectIPCError(.busy) { try channel.receive(timeout: .milliseconds(100)) }
      }
      #expect(waited >= 0.09)
      try channel.send([1])
      try channel.send([2])
      expectIPCError(.busy) { try channel.send([3], block: false) }
      expectIPCError(.busy) { try channel.send([3], timeout: .milliseconds(50)) }
      #expect(try channel.receive().message == [1])
      try channel.send([3], block: false)
      #expect(try channel.receive().message == [2])
      #expect(try channel.receive().message == [3])
    }
  }

  @Test func badArgumentsAreRefusedWithoutSideEffects() throws {
    expectIPCError(.invalidArgument) {
      try MessageChannel.create(key: .private, capacity: 0, maxMessageSize: 8)
    }
    expectIPCError(.invalidArgument) {
      try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 0)
    }
    try withChannel { channel in
      expectIPCError(.invalidArgument) { try channel.send([1], type: 0) }
      expectIPCError(.invalidArgument) { try channel.send([1], type: -3) }
      #expect(throws: IPCError.self) { try channel.receive(block: false) }
    }
  }

  @Test func receiveIntoAllocatesNothingAndKeepsATooLargeMessage() throws {
    try withChannel { channel in
      try channel.send([9, 8, 7, 6], type: 3)
      let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 2, alignment: 1)
      defer { small.deallocate() }
      expectIPCError(.outOfRange) { try channel.receive(into: small) }
      let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
      defer { big.deallocate() }
      let (count, type) = try channel.receive(into: big)
      #expect(count == 4 && type == 3)
      #expect(Array(big[..<4]) == [9, 8, 7, 6])
    }
  }

  @Test func reserveWritesInPlaceAndAThrowingFillIsSkipped() throws {
    struct Stop: Error {}
    try withChannel { channel in
      try channel.reserve(count: 5, type: 4) { buffer in
        for i in 0..<3 { buffer[i] = UInt8(i + 10) }
        return 3
      }
      expectIPCError(.permissions) {
        try channel.reserve(count: 5) { _ throws(IPCError) in
          throw IPCError(.permissions, "the body failed")
        }
      }
      expectIPCError(.outOfRange) { try channel.reserve(count: 2) { _ in 3 } }
      try channel.send([42])
      #expect(try channel.receive() == ([10, 11, 12], 4))
      #expect(try channel.receive() == ([42], 1))
      expectIPCError(.busy) { try channel.receive(block: false) }
    }
  }

  @Test func oneConsumerAtATime() throws {
    try withChannel { channel in
      try channel.send([1])
      #expect(try channel.receive().message == [1])
      let second = try MessageChannel.open(id: channel.id)
      try second.send([2])
      let refused = expectIPCError(.busy) { try second.receive(block: false) }
      #expect(refused?.message.contains("consumer") == true)
      #expect(try channel.receive().message == [2])
    }
  }

  @Test func openFindsTheSameChannelByKeyAndByID() throws {
    let channel = try MessageChannel.create(key: nil, capacity: 4, maxMessageSize: 100)
    defer { try? channel.remove() }
    #expect(channel.key != .private)
    let byKey = try MessageChannel.open(key: channel.key)
    let byID = try MessageChannel.open(id: channel.id)
    #expect(byKey.capacity == 4 && byKey.maxMessageSize == 100)
    #expect(byKey.semaphoreSetID == channel.semaphoreSetID)
    try byKey.send([1])
    try byID.send([2])
    #expect(try channel.receive().message == [1])
    #expect(try channel.receive().message == [2])
    #expect(try channel.producersAlive == 2)
    let (again, created) = try MessageChannel.openOrCreateReportingCreation(
      key: channel.key, capacity: 4, maxMessageSize: 100)
    #expect(!created && again.id == channel.id)
    let other = expectIPCError(.invalidArgument) {
      try MessageChannel.openOrCreate(key: channel.key, capacity: 5, maxMessageSize: 100)
    }
    #expect(other?.message.contains("exists") == true)
  }

  @Test func theModeAppliesToBothObjects() throws {
    try withChannel(mode: 0o640) { channel throws in
      #expect(try SharedMemory.attach(id: channel.id).mode == 0o640)
      #expect(try SemaphoreSet(id: channel.semaphoreSetID).status().mode == 0o640)
    }
  }

  @Test func createLeavesNothingBehindWhenTheSetCannotBeMade() throws {
    // A semaphore set already at the key makes creation fail after the segment was made.
    let set = try SemaphoreSet(key: nil, count: 1, flags: .createExclusive)
    defer { try? set.remove() }
    expectIPCError(.existential) {
      try MessageChannel.create(key: set.key, capacity: 2, maxMessageSize: 8)
    }
    expectIPCError(.existential) { try SharedMemory(key: set.key) }
  }

  @Test func openingSomethingElseSaysWhatWasFound() throws {
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096)
    defer { try? memory.remove() }
    try memory.write([0x42, 0, 0, 0, 0, 0, 0, 0])
    let error = expectIPCError(.invalidArgument) { try MessageChannel.open(key: memory.key) }
    #expect(error?.message.contains("found magic 0x42") == true)

    let tiny = try SharedMemory(key: nil, flags: .createExclusive, size: 16)
    defer { try? tiny.remove() }
    let small = expectIPCError(.invalidArgument) { try MessageChannel.open(key: tiny.key) }
    #expect(small?.message.contains("16 bytes") == true)

    let empty = try SharedMemory(key: nil, flags: .createExclusive, size: 4096, initCharacter: 0)
    defer { try? empty.remove() }
    let unfinished = expectIPCError(.busy) {
      try MessageChannel.open(key: empty.key, timeout: .milliseconds(50))
    }
    #expect(unfinished?.message.contains("no channel header") == true)
  }

  @Test func anotherLayoutVersionIsNamed() throws {
    try withChannel { channel in
      let memory = try SharedMemory.attach(id: channel.id)
      try memory.write(withUnsafeBytes(of: UInt32(7).littleEndian, Array.init), offset: 8)
      let error = expectIPCError(.invalidArgument) { try MessageChannel.open(id: channel.id) }
      #expect(error?.message.contains("found layout version 7") == true)
    }
  }

  @Test func asyncFormsAndTheSequence() async throws {
    try await withAsyncChannel(capacity: 4) { channel in
      let consumer = Task {
        var got: [[UInt8]] = []
        for try await (message, _) in channel.messages() {
          got.append(message)
          if got.count == 20 { break }
        }
        return got
      }
      for i in 0..<20 { try await channel.send([UInt8(i)]) }
      #expect(try await consumer.value == (0..<20).map { [UInt8($0)] })
    }
  }

  @Test(.timingSensitive) func asyncReceiveHonoursCancellation() async throws {
    try await withAsyncChannel { channel in
      let waiter = Task { try await channel.receive() }
      // Cancel a waiter that sleeps, not one that has not reached the wait yet.
      try await waitUntil("the receiver sleeps") {
        try SemaphoreSet(id: channel.semaphoreSetID).waitingForNonzero(at: 0) == 1
      }
      waiter.cancel()
      let start = ContinuousClock.now
      await #expect {
        _ = try await waiter.value
      } throws: { ($0 as? IPCError)?.isCancellation == true }
      #expect(ContinuousClock.now - start < .seconds(2))
      // Nothing was consumed: the next message is received by the next call.
      try await channel.send([5])
      #expect(try await channel.receive(timeout: .seconds(5)).message == [5])
    }
  }

  @Test func removalWakesAWaiterInThisProcess() async throws {
    let channel = try MessageChannel.create(key: .private, capacity: 2, maxMessageSize: 8)
    defer { try? channel.remove() }  // removing twice is harmless
    // The blocking receive runs on a thread of its own, not on one of the few pool threads.
    let waiter = Task { try await onThread { _ = try channel.receive(block: true) } }
    try await waitUntil("the receiver sleeps") {
      try SemaphoreSet(id: channel.semaphoreSetID).waitingForNonzero(at: 0) == 1
    }
    try channel.remove()
    await #expect { try await waiter.value } throws: { ($0 as? IPCError)?.kind == .existential }
  }
}

/// SplitMix64: a seeded generator, so that a failing fuzz case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("MessageChannel: the segment is untrusted input")
struct ChannelUntrustedTests {
  /// The fuzz target's body on 20,000 random segments (Scripts/fuzz-channel.sh runs it under
  /// libFuzzer and AddressSanitizer for longer): no crash, no hang, no invariant broken, and
  /// the inputs reach every outcome (rejected headers, faults, messages, sends).
  @Test func randomSegmentsNeverBreakTheReaderOrTheWriter() {
    var generator = SeededGenerator(state: 13)
    var total = ChannelFuzzing.Outcome()
    for _ in 0..<20_000 {
      let count = Int.random(in: 0...1200, using: &generator)
      var bytes = [UInt8](repeating: 0, count: count)
      bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
          // Words with mostly small bytes make states and lengths that look almost right.
          var word = generator.next()
          if word & 1 == 0 { word &= 0x0303_0303_0303_0303 }
          let end = min(offset + 8, raw.count)
          withUnsafeBytes(of: word) { raw[offset..<end].copyBytes(from: $0[..<(end - offset)]) }
          offset += 8
        }
      }
      let outcome = bytes.withUnsafeBytes { ChannelFuzzing.exercise($0) }
      total.headerRejected += outcome.headerRejected
      total.messages += outcome.messages
      total.faults += outcome.faults
      total.sent += outcome.sent
      total.violations += outcome.violations
    }
    #expect(total.violations == 0)
    #expect(total.headerRejected > 0 && total.messages > 0 && total.faults > 0 && total.sent > 0)
  }

  /// Garbage written into a live channel's ring gives `.internal` errors naming it, never a
  /// crash or a hang, and the channel goes on once the garbage is dropped (bad lengths, bad
  /// state codes and states from another lap alike).
  @Test func scribbledStatesAndLengthsGiveInternalErrors() throws {
    try withChannel(capacity: 4, maxMessageSize: 64) { channel in
      let memory = try SharedMemory.attach(id: channel.id)
      let stride = 128  // 24 + 64 rounded up to 64
      try channel.send([1, 2, 3])
      // A length beyond maxMessageSize in the committed slot 0.
      try memory.write(
        withUnsafeBytes(of: UInt32(1_000_000).littleEndian, Array.init), offset: 256 + 16)
      let long = expectIPCError(.internal) { try channel.receive(block: false) }
      #expect(long?.message.contains("length 1000000") == true)
      // The bad message was dropped: the channel works again.
      try channel.send([4])
      #expect(try channel.receive(block: false).message == [4])
      // A slot state from a lap the consumer cannot be at.
      let head = 2
      try memory.write(
        withUnsafeBytes(of: (UInt64(77) << 32 | 0xFFFF_FFFF).littleEndian, Array.init),
        offset: 256 + head * stride)
      let lap = expectIPCError(.internal) { try channel.receive(block: false) }
      #expect(lap?.message.contains("lap 77") == true)
      // That slot was dropped too: the channel goes on (it used to stay jammed there for good).
      try channel.send([5])
      #expect(try channel.receive(block: false).message == [5])
    }
  }
}
