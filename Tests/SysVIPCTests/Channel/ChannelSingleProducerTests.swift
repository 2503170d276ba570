import Foundation
import SysVIPC
import Testing

@testable import SysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A single-producer channel (`singleProducer: true`): one producer handle at a time,
/// registered exclusively, whose claims and commits are plain stores. The guarantees of the
/// many-producer channel hold for it: exactly once and in order, crash safety (a producer killed
/// inside a message delivers nothing of it and leaves the channel to its successor), both
/// implementations.
@Suite("MessageChannel with a single producer", .timingSensitive)
struct ChannelSingleProducerTests {
  private func singleProducerChannel(capacity: Int, maxMessageSize: Int) throws -> MessageChannel {
    try MessageChannel.create(
      key: .private, capacity: capacity, maxMessageSize: maxMessageSize, singleProducer: true)
  }

  /// One producer process, one consumer process, random sizes: every message exactly once, in
  /// order (count + checksum), with a roomy ring and with a ring of 2 that makes both sides wait
  /// on nearly every message; the Swift producer with the C consumer and the reverse too.
  @Test(arguments: [
    (64, "swift", "swift"), (2, "swift", "swift"), (8, "c", "swift"), (8, "swift", "c"),
  ])
  func exactlyOnceInOrder(capacity: Int, producerSide: String, consumerSide: String)
    async throws
  {
    let channel = try singleProducerChannel(capacity: capacity, maxMessageSize: 512)
    defer { try? channel.remove() }
    #expect(channel.isSingleProducer)
    let id = String(channel.id)
    let count = 3000
    let consumer: HelperProcess.Outcome
    let produced: HelperProcess.Outcome
    if consumerSide == "c" {
      let c = try ChannelCPeer(["consume", id, String(count)])
      produced = try await HelperProcess([
        "chan-produce", id, "0", String(count), "512", "--seed", "5",
      ]).outcome(timeout: .seconds(120))
      consumer = try await c.outcome(timeout: .seconds(120))
    } else {
      let swift = try HelperProcess(["chan-consume", id, String(count), "--into"])
      if producerSide == "c" {
        produced = try await ChannelCPeer(["produce", id, "0", String(count), "512", "5"])
          .outcome(timeout: .seconds(120))
      } else {
        produced = try await HelperProcess([
          "chan-produce", id, "0", String(count), "512", "--seed", "5",
        ]).outcome(timeout: .seconds(120))
      }
      consumer = try await swift.outcome(timeout: .seconds(120))
    }
    expectExactlyOnce(producers: [produced], consumer: consumer, perProducer: count)
  }

  /// While one handle is the producer, a send on another (in this process or another) is
  /// `.busy`, and sends nothing; when the producer's handle goes, or its process dies
  /// (`SEM_UNDO`), another handle becomes the producer.
  @Test func oneProducerHandleAtATime() async throws {
    let channel = try singleProducerChannel(capacity: 8, maxMessageSize: 64)
    defer { try? channel.remove() }
    var first: MessageChannel? = try MessageChannel.open(id: channel.id)
    try await first!.send([1])
    let refused = expectIPCError(.busy) { try channel.send([2]) }
    #expect(refused?.message.contains("single-producer channel's producer") == true, "\(refused!)")
    // Another process is refused as well.
    let other = try await HelperProcess(["chan-produce", String(channel.id), "0", "1", "64"])
      .outcome()
    #expect(other.errorKind == "busy", "\(other.output)")
    #expect(try channel.producersAlive == 1)
    first = nil
    #expect(try channel.producersAlive == 0)
    try await channel.send([3])
    #expect(try await channel.receive().message == [1])
    #expect(try await channel.receive().message == [3])
    #expect(throws: IPCError.self) { try channel.receive(block: false) }
  }

  /// A producer killed inside its fill (a slot claimed, half written) delivers nothing of that
  /// message; its registration dies with it, and the next producer takes the same position: the
  /// consumer gets the dead producer's first messages, then the next one's, nothing torn.
  @Test func aProducerKilledMidMessageLeavesTheChannelToTheNext() async throws {
    let channel = try singleProducerChannel(capacity: 4, maxMessageSize: 256)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let victim = try HelperProcess(["chan-produce", id, "0", "10", "256", "--hold-at", "3"])
    try await victim.waitForLine("holding", "yes")
    #expect(try channel.producersAlive == 1)
    victim.signal(SIGKILL)
    _ = try await victim.outcome()
    try await waitUntil("the victim's registration is undone") { try channel.producersAlive == 0 }
    let consumer = try HelperProcess(["chan-consume", id, "203"])
    let next = try await HelperProcess(["chan-produce", id, "1", "200", "256"]).outcome()
    #expect(next.ok, "\(next.output)")
    let consumed = try await consumer.outcome()
    #expect(consumed.ok, "\(consumed.output)")
    #expect(consumed.value("p0") == "3")  // 0, 1, 2; 3 was being written
    #expect(consumed.value("p1") == "200")
    #expect(consumed.value("corrupt") == "0")
    #expect(consumed.value("disorder") == "0")
  }

  /// Producers killed at random instants, one after another (each registers once its
  /// predecessor is dead), then one that sends 1,000 messages: no message is torn or out of
  /// order, each killed producer's committed messages arrive in order, and all the last one's.
  @Test func producersKilledAtRandomInstants() async throws {
    let channel = try singleProducerChannel(capacity: 16, maxMessageSize: 300)
    defer { try? channel.remove() }
    let id = String(channel.id)
    // The consumer keeps the ring moving so that producers die anywhere, not only while full;
    // it stops after the last producer's 1,000th message (between two producers none lives,
    // so "every producer has gone" cannot be its end).
    let consumer = try HelperProcess(["chan-consume", id, "0", "--until", "0:1000"])
    let kills = try await killProducersAtRandomInstants(channel: id, count: 10) {
      // One producer at a time: the next registers once the kernel has counted this one out.
      try await waitUntil("no producer is registered") { try channel.producersAlive == 0 }
    }
    #expect(kills == 10)
    try await waitUntil("no producer is registered") { try channel.producersAlive == 0 }
    let last = try await HelperProcess(["chan-produce", id, "0", "1000", "300"]).outcome(
      timeout: .seconds(120))
    #expect(last.ok, "\(last.output)")
    let consumed = try await consumer.outcome(timeout: .seconds(120))
    #expect(consumed.ok, "\(consumed.output)")
    #expect(consumed.value("corrupt") == "0")
    #expect(consumed.value("disorder") == "0")
    #expect(consumed.value("p0") == "1000")
    #expect(consumed.value("c0") == last.value("checksum"))
  }

  /// A producer that died after committing but before recording the tail leaves its successor
  /// a stale tail: the successor moves past the positions used already, whether their messages
  /// are still in the ring or consumed, and sends after them. (The tail is set back by hand, as
  /// that death would leave it.)
  @Test func aStaleTailIsMovedPast() async throws {
    let channel = try singleProducerChannel(capacity: 4, maxMessageSize: 8)
    defer { try? channel.remove() }
    var first: MessageChannel? = try MessageChannel.open(id: channel.id)
    for byte: UInt8 in 1...3 { try await first!.send([byte]) }
    first = nil
    #expect(try await channel.receive().message == [1])  // position 0 consumed, 1 and 2 not
    let memory = try SharedMemory.attach(id: channel.id)
    try memory.withUnsafeMutableBytes {
      $0.storeBytes(of: UInt64(0).littleEndian, toByteOffset: 64, as: UInt64.self)
    }
    let next = try MessageChannel.open(id: channel.id)
    try await next.send([4])
    for byte: UInt8 in 2...4 { #expect(try await channel.receive().message == [byte]) }
    let tail = try memory.withUnsafeBytes { $0.load(fromByteOffset: 64, as: UInt64.self) }
    #expect(UInt64(littleEndian: tail) == 4)
  }

  /// One send at a time on a single-producer handle: a send while another on the same handle
  /// waits for space is `.busy`; the waiting one completes when space comes.
  @Test func oneSendAtATimeOnTheHandle() async throws {
    let channel = try singleProducerChannel(capacity: 1, maxMessageSize: 16)
    defer { try? channel.remove() }
    try await channel.send([1])
    let waiting = StartedThread { () throws -> Void in try channel.send([2]) }
    try await waitUntil("the second send sleeps for space") {
      aThreadWaits(in: "semtimedop", on: channel.semaphoreSetID)
    }
    let refused = expectIPCError(.busy) { try channel.send([3], block: false) }
    #expect(refused?.message.contains("another send") == true, "\(refused!)")
    #expect(try await channel.receive().message == [1])
    try await waiting.value
    #expect(try await channel.receive().message == [2])
    #expect(throws: IPCError.self) { try channel.receive(block: false) }
  }

  /// A cancelled async send that waited for space gives the handle back: the next send on it
  /// is not refused as "another send in progress", and the cancelled one sent nothing.
  @Test func aCancelledSendGivesTheHandleBack() async throws {
    let channel = try singleProducerChannel(capacity: 1, maxMessageSize: 16)
    defer { try? channel.remove() }
    try await channel.send([1])
    let waiting = BoundedTask { try await channel.send([2]) }
    try await waitUntil("the async send sleeps for space") {
      aThreadWaits(in: "semtimedop", on: channel.semaphoreSetID)
    }
    waiting.cancel()
    let outcome = try await waiting.outcome("the cancelled send")
    guard case .failure(let error) = outcome else {
      Issue.record("a cancelled send completed")
      return
    }
    #expect((error as? IPCError)?.isCancellation == true, "\(error)")
    #expect(try await channel.receive().message == [1])
    try await channel.send([3])
    #expect(try await channel.receive().message == [3])
    #expect(throws: IPCError.self) { try channel.receive(block: false) }
  }

  /// `openOrCreate` finds a channel with the producer mode it asks for, or says otherwise; a
  /// header with a flag this library does not know is refused (Swift `.invalidArgument`, C
  /// `EPROTO`).
  @Test func theFlagIsCheckedAtOpen() async throws {
    let channel = try MessageChannel.create(
      key: nil, capacity: 4, maxMessageSize: 32, singleProducer: true)
    defer { try? channel.remove() }
    let same = try MessageChannel.openOrCreate(
      key: channel.key, capacity: 4, maxMessageSize: 32, singleProducer: true)
    #expect(same.isSingleProducer && same.id == channel.id)
    let other = expectIPCError(.invalidArgument) {
      try MessageChannel.openOrCreate(key: channel.key, capacity: 4, maxMessageSize: 32)
    }
    #expect(other?.message.contains("singleProducer") == true)
    let many = try MessageChannel.create(key: .private, capacity: 1, maxMessageSize: 1)
    defer { try? many.remove() }
    #expect(!many.isSingleProducer)
    try SharedMemory.attach(id: channel.id).withUnsafeMutableBytes {
      $0.storeBytes(of: UInt32(3).littleEndian, toByteOffset: 44, as: UInt32.self)
    }
    let unknown = expectIPCError(.invalidArgument) { try MessageChannel.open(id: channel.id) }
    #expect(unknown?.message.contains("flags 0x3") == true, "\(unknown!)")
    let c = try await ChannelCPeer(["open", String(channel.id)]).outcome()
    #expect(!c.ok && c.output.contains("errno=\(EPROTO)"), "\(c.output)")
  }
}
