import CSysVIPCChannel
import Foundation
import SysVIPC
import Testing

@testable import SysVIPC
@testable import SysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Regression tests for the defects of the channel review (reports/review.md, items 1-6): each
/// failed (or crashed) before its fix.
@Suite("MessageChannel: review regressions")
struct ChannelReviewTests {
  /// A random key that nothing uses (checked), for tests that must see what a key leaves.
  private func unusedKey() -> IPCKey {
    while true {
      let key = IPCKey(rawValue: Int32.random(in: 0x1000_0000...0x7FFF_FFFF))
      let noSegment = (try? SharedMemory(key: key)) == nil
      let noSet = (try? SemaphoreSet(key: key, count: 0)) == nil
      if noSegment && noSet { return key }
    }
  }

  /// Review #1: a mode without the owner's write bit attached the creator read-only, and the
  /// header write crashed, leaving both objects behind.
  @Test func aModeWithoutOwnerWriteIsRefusedBeforeAnythingIsCreated() throws {
    let key = unusedKey()
    let created = expectIPCError(.invalidArgument) {
      try MessageChannel.create(key: key, capacity: 2, maxMessageSize: 8, mode: 0o400)
    }
    #expect(created?.message.contains("0o200") == true)
    expectIPCError(.invalidArgument) {
      try MessageChannel.openOrCreate(key: key, capacity: 2, maxMessageSize: 8, mode: 0o444)
    }
    expectIPCError(.existential) { try SharedMemory(key: key) }
    expectIPCError(.existential) { try SemaphoreSet(key: key, count: 0) }
  }

  /// Review #1, the opener's side: a read-only attachment gives `.permissions`, not a crash at
  /// the first send.
  @Test func aReadOnlyAttachmentIsRefusedWithPermissions() throws {
    try withChannel { channel in
      let readOnly = try SharedMemory.attach(id: channel.id, flags: .readOnly)
      #expect(readOnly.isReadOnly)
      expectIPCError(.permissions) { try MessageChannel.attach(readOnly, timeout: .zero) }
    }
  }

  /// Review #4: a scribbled consumer-sleepers word (0xFFFFFFFF) made each send make 131,072
  /// semops (68 ms here); it is now one semop of at most 32767. Counted, not timed: the
  /// fault-injection plan (with no fault in it) counts the calls of the system-call layer.
  @Test func aScribbledSleepersWordCostsOneSemop() throws {
    try withChannel(capacity: 4, maxMessageSize: 8) { channel in
      let set = try SemaphoreSet(id: channel.semaphoreSetID)
      // The first send also counts this process in as a producer (a semop of its own).
      try channel.send([0])
      #expect(try channel.receive(block: false).message == [0])
      for _ in 0..<10 {
        csvc_store32_seqcst(channel.ring.consumerSleepers, 0xFFFF_FFFF)
        let plan = FaultPlan([])
        try FaultPlan.$current.withValue(plan) { try channel.send([1]) }
        #expect(plan.calls(.semop) + plan.calls(.semtimedop) == 1, "semops for one send")
        #expect(try set.value(at: Int(ChannelLayout.dataSemaphore)) == 32767)
        #expect(try channel.receive(block: false).message == [1])
        try set.setValue(0, at: Int(ChannelLayout.dataSemaphore))
      }
    }
  }

  /// Review #6: a send after remove() succeeded into the detached ring and the message was
  /// lost; now it (and a receive) throws `.existential` on every handle.
  @Test func sendAndReceiveAfterRemovalThrowExistential() throws {
    let channel = try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 8)
    defer { try? channel.remove() }
    let other = try MessageChannel.open(id: channel.id, timeout: .zero)
    try other.send([1])
    try channel.remove()
    expectIPCError(.existential) { try other.send([2]) }
    expectIPCError(.existential) { try channel.send([3], block: false) }
    expectIPCError(.existential) { try channel.receive(block: false) }
  }

  /// Review #2: a claim the consumer reclaimed (it took the writer for dead, as it does for a
  /// producer in another PID namespace) must not be committed over the slot: the send fails and
  /// the slot's state stays as the consumer left it; the channel goes on.
  @Test func aCommitAfterReclaimFailsAndOverwritesNothing() throws {
    try withChannel(capacity: 2, maxMessageSize: 8) { channel in
      let reclaimed = ChannelRing.state(lap: 1, code: ChannelLayout.free)
      var slot: UnsafeMutableRawPointer?
      let error = expectIPCError(.internal) {
        try channel.reserve(count: 1, type: 1) { buffer in
          // What the consumer's reclaim of position 0 stores: free for the next lap.
          slot = buffer.baseAddress! - ChannelLayout.slotHeaderSize
          csvc_store64_release(slot!, reclaimed)
          buffer[0] = 1
          return 1
        }
      }
      #expect(error?.message.contains("not sent") == true)
      #expect(csvc_load64_acquire(slot!) == reclaimed)
      try channel.send([2])
      #expect(try channel.receive(block: false).message == [2])
      expectIPCError(.busy) { try channel.receive(block: false) }
    }
  }

  /// Review #1-#4 and #6 in the C implementation: sysvipc-channel-c's `probe` runs the same
  /// checks on a channel this test made.
  @Test(.timingSensitive) func theCImplementationHasTheSameFixes() async throws {
    let channel = try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 8)
    defer { try? channel.remove() }
    let outcome = try await ChannelCPeer(["probe", String(channel.id)]).outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("reclaimed_commit") == String(EPROTO))
    #expect(outcome.value("reclaimed_state_kept") == "1")
    #expect(outcome.value("lap_garbage") == String(EPROTO))
    #expect(outcome.value("after_lap_garbage") == "0")
    let micros = Int(outcome.value("scribbled_sleepers_send_us") ?? "") ?? .max
    #expect(micros < 20_000, "\(outcome.output)")
    #expect(outcome.value("send_after_remove") == String(EIDRM))
    #expect(outcome.value("receive_after_remove") == String(EIDRM))
  }

  /// Review #5: the C side semop'ed on whatever set the header named. A header naming a set
  /// that is not the channel's (here one with another key) is refused with EPROTO.
  @Test func theCImplementationRefusesAForeignSemaphoreSet() async throws {
    let channel = try MessageChannel.create(key: nil, capacity: 4, maxMessageSize: 8)
    defer { try? channel.remove() }
    let foreign = try SemaphoreSet(key: .private, count: 4, flags: .createExclusive)
    defer { try? foreign.remove() }
    let memory = try SharedMemory.attach(id: channel.id)
    try memory.write(
      withUnsafeBytes(of: foreign.id.littleEndian, Array.init),
      offset: ChannelLayout.semaphoreSetIDOffset)
    let outcome = try await ChannelCPeer(["produce", String(channel.id), "0", "1", "8"]).outcome()
    #expect(!outcome.ok)
    #expect(outcome.output.contains("errno=\(EPROTO) "), "\(outcome.output)")
    #expect(try foreign.values() == [0, 0, 0, 0])
  }
}
