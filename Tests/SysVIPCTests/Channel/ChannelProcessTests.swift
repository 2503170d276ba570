import Foundation
import SysVIPC
import Testing

@testable import SysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The C implementation (Sources/SysVIPCChannelC, sysvipc_channel.h) run as a process: built by
/// `swift build` beside the test helper.
final class ChannelCPeer: Sendable {
  static let executable: String = {
    URL(fileURLWithPath: HelperProcess.executable).deletingLastPathComponent()
      .appendingPathComponent("sysvipc-channel-c").path
  }()

  let pid: pid_t
  let outputPath: String

  /// Runs the C program with `arguments`, under `launcher` when given (such as `unshare`).
  init(_ arguments: [String], launcher: [String] = []) throws {
    outputPath =
      FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-channel-c-\(UUID().uuidString).out").path
    pid = try spawnCleanly(launcher + [Self.executable] + arguments, output: outputPath)
  }

  deinit { try? FileManager.default.removeItem(atPath: outputPath) }

  func outcome(timeout: Duration = .seconds(60)) async throws -> HelperProcess.Outcome {
    var status: Int32 = 0
    try await waitUntil("C peer \(pid) exited", timeout: timeout) {
      waitpid(self.pid, &status, WNOHANG) == self.pid
    }
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return HelperProcess.Outcome(status: code, output: text)
  }
}

/// A shared channel for a multi-process test, removed when the test ends.
private func sharedChannel(capacity: Int, maxMessageSize: Int, mode: IPCPermissions = 0o600)
  throws -> MessageChannel
{
  try MessageChannel.create(
    key: .private, capacity: capacity, maxMessageSize: maxMessageSize, mode: mode)
}

/// Starts `count` producers of endless messages of up to 300 bytes on channel `channel` (ids 10,
/// 11, …), one after another, and kills each 0–20 ms after it is ready, at a random instant of
/// its work; `beforeEach` runs before each starts. Returns how many died of the kill.
func killProducersAtRandomInstants(
  channel: String, count: Int, beforeEach: () async throws -> Void = {}
) async throws -> Int {
  var generator = SystemRandomNumberGenerator()
  var kills = 0
  for victimIndex in 0..<count {
    try await beforeEach()
    let victim = try HelperProcess([
      "chan-produce", channel, String(10 + victimIndex), "1000000", "300",
    ])
    try await victim.waitForLine("ready", "yes")
    try await Task.sleep(for: .microseconds(Int.random(in: 0...20_000, using: &generator)))
    victim.signal(SIGKILL)
    let ended = try await victim.outcome()
    if ended.status == 128 + SIGKILL { kills += 1 }
  }
  return kills
}

/// Adds up what the producers report and checks it against the consumer's tally.
func expectExactlyOnce(
  producers: [HelperProcess.Outcome], consumer: HelperProcess.Outcome, perProducer: Int,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(consumer.ok, "\(consumer.output)", sourceLocation: sourceLocation)
  var checksum: UInt64 = 0
  for producer in producers {
    #expect(producer.ok, "\(producer.output)", sourceLocation: sourceLocation)
    #expect(producer.value("sent") == String(perProducer), sourceLocation: sourceLocation)
    checksum &+= UInt64(producer.value("checksum") ?? "") ?? 0
  }
  #expect(
    consumer.value("received") == String(producers.count * perProducer),
    sourceLocation: sourceLocation)
  #expect(consumer.value("corrupt") == "0", sourceLocation: sourceLocation)
  #expect(consumer.value("disorder") == "0", sourceLocation: sourceLocation)
  #expect(consumer.value("checksum") == String(checksum), sourceLocation: sourceLocation)
  for p in 0..<producers.count {
    #expect(consumer.value("p\(p)") == String(perProducer), sourceLocation: sourceLocation)
  }
}

@Suite("MessageChannel across processes", .timingSensitive)
struct ChannelProcessTests {
  /// 4 producers × random sizes → one consumer: every message exactly once, in order per
  /// producer (count + checksum), with a roomy ring and with a ring of 2 that makes both sides
  /// wait on nearly every message. (Scripts/channel-load.sh runs the issue's 100,000 each.)
  @Test(arguments: [(64, 2000), (2, 800)])
  func exactlyOnceInOrder(capacity: Int, perProducer: Int) async throws {
    let channel = try sharedChannel(capacity: capacity, maxMessageSize: 512)
    defer { try? channel.remove() }
    let gate = try makeSemaphore(initialValue: 1)
    defer { try? gate.remove() }
    let id = String(channel.id)
    let consumer = try HelperProcess(["chan-consume", id, String(4 * perProducer), "--into"])
    let producers = try (0..<4).map {
      try HelperProcess([
        "chan-produce", id, String($0), String(perProducer), "512", "--seed", "7", "--gate",
        String(gate.id),
      ])
    }
    for producer in producers { try await producer.waitForLine("ready", "yes") }
    try gate.setValue(0)
    var outcomes: [HelperProcess.Outcome] = []
    for producer in producers {
      outcomes.append(try await producer.outcome(timeout: .seconds(120)))
    }
    expectExactlyOnce(
      producers: outcomes, consumer: try await consumer.outcome(timeout: .seconds(120)),
      perProducer: perProducer)
  }

  /// A producer killed inside its fill (slot claimed, half written) is skipped: the consumer
  /// never sees its torn message, the other producers' messages all arrive, and a receiver that
  /// asked to stop when producers are gone stops instead of waiting for the dead one.
  @Test func aProducerKilledMidMessageNeitherTearsNorWedges() async throws {
    let channel = try sharedChannel(capacity: 4, maxMessageSize: 256)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let victim = try HelperProcess(["chan-produce", id, "0", "10", "256", "--hold-at", "3"])
    try await victim.waitForLine("holding", "yes")
    // The victim's slot blocks the head; others fill the rest of the ring and must wait on it.
    let survivor = try HelperProcess(["chan-produce", id, "1", "200", "256"])
    try await waitUntil("the survivor waits for space") { survivor.state == "S" }
    victim.signal(SIGKILL)
    _ = try await victim.outcome()
    let consumer = try HelperProcess(["chan-consume", id, "0", "--ends"])
    let survived = try await survivor.outcome()
    let consumed = try await consumer.outcome()
    #expect(survived.ok, "\(survived.output)")
    #expect(consumed.ok, "\(consumed.output)")
    #expect(consumed.value("p0") == "3")  // 0, 1, 2; 3 was being written
    #expect(consumed.value("p1") == "200")
    #expect(consumed.value("corrupt") == "0")
    #expect(consumed.value("disorder") == "0")
    #expect(try channel.producersAlive == 0)
  }

  /// Producers killed at random instants, many times, during a load of two producers that
  /// survive: no message is torn or out of order, and everything a survivor sent arrives.
  @Test func producersKilledAtRandomInstants() async throws {
    let channel = try sharedChannel(capacity: 16, maxMessageSize: 300)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let perSurvivor = 1500
    let consumer = try HelperProcess(["chan-consume", id, "0", "--ends"])
    // The survivors stay producers until the victims are done: otherwise a victim could be
    // the only live producer, and its death would end the consumer.
    let linger = try makeSemaphore(initialValue: 1)
    defer { try? linger.remove() }
    let survivors = try (0..<2).map {
      try HelperProcess([
        "chan-produce", id, String($0), String(perSurvivor), "300", "--linger", String(linger.id),
      ])
    }
    try await waitUntil("the survivors registered") { try channel.producersAlive == 2 }
    #expect(try await killProducersAtRandomInstants(channel: id, count: 12) == 12)
    try linger.setValue(0)
    var outcomes: [HelperProcess.Outcome] = []
    for survivor in survivors {
      outcomes.append(try await survivor.outcome(timeout: .seconds(120)))
    }
    let consumed = try await consumer.outcome(timeout: .seconds(120))
    #expect(consumed.ok, "\(consumed.output)")
    #expect(consumed.value("corrupt") == "0")
    #expect(consumed.value("disorder") == "0")
    for (p, survivor) in outcomes.enumerated() {
      #expect(survivor.ok, "\(survivor.output)")
      #expect(consumed.value("p\(p)") == String(perSurvivor))
      // What each survivor sent arrived byte for byte: its checksum is the consumer's for it.
      #expect(survivor.value("checksum") != nil)
      #expect(consumed.value("c\(p)") == survivor.value("checksum"))
    }
    // The victims' messages that were committed arrived whole, in order; count them in.
    #expect(Int(consumed.value("received") ?? "") ?? 0 >= 2 * perSurvivor)
  }

  /// Removal wakes a receiver sleeping on an empty channel and a sender sleeping on a full one,
  /// in other processes, with `.existential`.
  @Test func removalWakesWaitersInOtherProcesses() async throws {
    let channel = try sharedChannel(capacity: 2, maxMessageSize: 16)
    defer { try? channel.remove() }
    let receiver = try HelperProcess(["chan-wait-receive", String(channel.id)])
    try await receiver.waitForLine("waiting", "yes")
    try await waitUntil("the receiver sleeps on DATA") {
      try SemaphoreSet(id: channel.semaphoreSetID).waitingForNonzero(at: 0) == 1
    }
    let other = try sharedChannel(capacity: 2, maxMessageSize: 16)
    defer { try? other.remove() }
    let sender = try HelperProcess(["chan-wait-send", String(other.id)])
    try await sender.waitForLine("waiting", "yes")
    try await waitUntil("the sender sleeps on SPACE") {
      try SemaphoreSet(id: other.semaphoreSetID).waitingForNonzero(at: 1) == 1
    }
    try channel.remove()
    try other.remove()
    #expect(try await receiver.outcome().errorKind == "existential")
    #expect(try await sender.outcome().errorKind == "existential")
  }

  /// Of processes racing openOrCreate at one key, exactly one creates; all get the same channel.
  @Test func openOrCreateRaceHasOneCreator() async throws {
    // A key nothing uses (checked), and cleanup by the ids the racers report: never remove
    // what sits at a key this test did not make, and never leave a half-made channel behind.
    var key = IPCKey(rawValue: Int32.random(in: 1...Int32.max))
    while (try? SharedMemory(key: key)) != nil || (try? SemaphoreSet(key: key, count: 0)) != nil {
      key = IPCKey(rawValue: Int32.random(in: 1...Int32.max))
    }
    expectIPCError(.existential) { try SharedMemory(key: key) }
    expectIPCError(.existential) { try SemaphoreSet(key: key, count: 0) }
    let gate = try makeSemaphore(initialValue: 1)
    defer { try? gate.remove() }
    var outcomes: [HelperProcess.Outcome] = []
    defer {
      for id in Set(outcomes.compactMap { $0.value("id") }).compactMap(Int32.init) {
        try? SharedMemory.remove(id: id)
      }
      for id in Set(outcomes.compactMap { $0.value("semid") }).compactMap(Int32.init) {
        try? SemaphoreSet.remove(id: id)
      }
    }
    let racers = try (0..<4).map { _ in
      try HelperProcess(["chan-race", String(key.rawValue), String(gate.id), "8", "64"])
    }
    for racer in racers { try await racer.waitForLine("ready", "yes") }
    try gate.setValue(0)
    for racer in racers { outcomes.append(try await racer.outcome()) }
    #expect(outcomes.allSatisfy { $0.ok }, "\(outcomes.map { $0.output })")
    #expect(outcomes.filter { $0.value("created") == "yes" }.count == 1)
    #expect(Set(outcomes.compactMap { $0.value("id") }).count == 1)
    #expect(outcomes.allSatisfy { $0.value("capacity") == "8" })
  }

  /// The channel's mode applies to both objects: an unprivileged user is refused with
  /// `.permissions` on a 0o600 channel, and may use a 0o666 one.
  @Test(.enabled(if: isRoot, "needs root to create objects that nobody is refused"))
  func permissionsForRealUsers() async throws {
    let closed = try sharedChannel(capacity: 2, maxMessageSize: 16, mode: 0o600)
    defer { try? closed.remove() }
    let refused = try await HelperProcess.run(["--as-nobody", "chan-open", String(closed.id)])
    #expect(refused.value("privileges") == "dropped")
    #expect(refused.errorKind == "permissions", "\(refused.output)")

    let open = try sharedChannel(capacity: 2, maxMessageSize: 16, mode: 0o666)
    defer { try? open.remove() }
    try await open.send([1, 2])
    let allowed = try await HelperProcess.run(["--as-nobody", "chan-open", String(open.id)])
    #expect(allowed.value("privileges") == "dropped")
    #expect(allowed.ok, "\(allowed.output)")
  }

  // MARK: Interoperation with the C implementation

  @Test func cProducersSwiftConsumer() async throws {
    let channel = try sharedChannel(capacity: 8, maxMessageSize: 700)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let consumer = try HelperProcess(["chan-consume", id, "2000"])
    let producers = try (0..<2).map {
      try ChannelCPeer(["produce", id, String($0), "1000", "700", "3"])
    }
    var outcomes: [HelperProcess.Outcome] = []
    for producer in producers { outcomes.append(try await producer.outcome()) }
    expectExactlyOnce(
      producers: outcomes, consumer: try await consumer.outcome(), perProducer: 1000)
  }

  @Test func swiftProducersCConsumer() async throws {
    let channel = try sharedChannel(capacity: 8, maxMessageSize: 700)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let consumer = try ChannelCPeer(["consume", id, "2000"])
    let producers = try (0..<2).map {
      try HelperProcess(["chan-produce", id, String($0), "1000", "700", "--seed", "3"])
    }
    var outcomes: [HelperProcess.Outcome] = []
    for producer in producers { outcomes.append(try await producer.outcome()) }
    expectExactlyOnce(
      producers: outcomes, consumer: try await consumer.outcome(), perProducer: 1000)
  }

  /// The consumer tells a dead producer by its pid, which means nothing in another PID
  /// namespace: a process there is refused when it opens the channel (`.invalidArgument`,
  /// EXDEV; C: EXDEV), before it could send anything, instead of having its sends reclaimed
  /// as a dead writer's. The creator's namespace is in the header; processes in it open the
  /// channel as before.
  @Test(.enabled(if: isRoot, "unshare --pid needs root"))
  func aProcessInAnotherPIDNamespaceIsRefused() async throws {
    let channel = try sharedChannel(capacity: 4, maxMessageSize: 16)
    defer { try? channel.remove() }
    let id = String(channel.id)
    let elsewhere = ["/usr/bin/unshare", "--pid", "--fork"]
    // The launcher itself works here: the same program runs in a new PID namespace.
    let probe = try await HelperProcess.run(["chan-pid-namespace"], launcher: elsewhere)
    let here = try await HelperProcess.run(["chan-pid-namespace"])
    #expect(probe.ok && here.ok, "\(probe.output) \(here.output)")
    #expect(
      probe.value("namespace") != nil && probe.value("namespace") != here.value("namespace"),
      "the helper ran in a namespace of its own: \(probe.output) vs \(here.output)")

    let swift = try await HelperProcess.run(["chan-open", id], launcher: elsewhere)
    #expect(swift.errorKind == "invalidArgument", "\(swift.output)")
    #expect(swift.output.contains("PID namespace"), "\(swift.output)")
    let c = try await ChannelCPeer(["open", id], launcher: elsewhere).outcome()
    #expect(c.output.contains("result=error errno=\(EXDEV) "), "\(c.output)")
    // Processes in the creator's namespace open it, and find that nothing was sent.
    let sameSwift = try await HelperProcess.run(["chan-open", id])
    #expect(sameSwift.errorKind == "busy", "\(sameSwift.output)")
    #expect(sameSwift.output.contains("no message"), "nothing sent: \(sameSwift.output)")
    let sameC = try await ChannelCPeer(["open", id]).outcome()
    #expect(sameC.ok, "\(sameC.output)")
  }

  /// The semaphore set's id is read from the segment, so it is untrusted: a header made to name
  /// another private set of 4 semaphores (same key, 0, and same shape) is refused, because that
  /// set's creator is not the segment's, by Swift (`.invalidArgument` naming both) and by C
  /// (EPROTO); neither touches the other set.
  @Test(.enabled(if: isRoot, "needs root to create a set as nobody"))
  func aHeaderNamingAnotherCreatorsSetIsRefused() async throws {
    let channel = try sharedChannel(capacity: 4, maxMessageSize: 16)
    defer { try? channel.remove() }
    let foreign = try await HelperProcess.run([
      "--as-nobody", "create-open", "private-set-of-4", "666",
    ])
    #expect(foreign.value("privileges") == "dropped", "\(foreign.output)")
    let setID = try #require(foreign.value("id").flatMap(Int32.init), "\(foreign.output)")
    let set = try SemaphoreSet(id: setID)
    defer { try? set.remove() }
    let foreignCreator = try set.cuid
    #expect(set.count == 4 && set.key == .private && foreignCreator != geteuid())
    let values = try set.values()
    // Scribble the header: the semaphore set id (offset 28) now names nobody's set.
    let segment = try SharedMemory.attach(id: channel.id)
    defer { try? segment.detach() }
    try segment.withUnsafeMutableBytes {
      $0.storeBytes(of: setID, toByteOffset: 28, as: Int32.self)
    }
    do {
      _ = try MessageChannel.open(id: channel.id)
      Issue.record("opened a channel whose header names another creator's set")
    } catch {
      #expect(error.kind == .invalidArgument, "\(error)")
      #expect(error.message.contains("created by uid"), "\(error)")
    }
    let c = try await ChannelCPeer(["open", String(channel.id)]).outcome()
    #expect(c.output.contains("result=error errno=\(EPROTO) "), "\(c.output)")
    #expect(try set.values() == values, "the other set was not touched")
    // Put the header back: the channel opens again.
    try segment.withUnsafeMutableBytes {
      $0.storeBytes(of: channel.semaphoreSetID, toByteOffset: 28, as: Int32.self)
    }
    _ = try MessageChannel.open(id: channel.id)
  }

  /// A channel the C side creates has the header the Swift side checks, and the reverse.
  @Test func cCreatesSwiftOpens() async throws {
    let created = try await ChannelCPeer(["create", "5", "100"]).outcome()
    #expect(created.ok, "\(created.output)")
    let id = try #require(created.value("id").flatMap(Int32.init))
    let semid = try #require(created.value("semid").flatMap(Int32.init))
    // Both objects go, also when opening them fails.
    defer {
      try? SharedMemory.remove(id: id)
      try? SemaphoreSet(id: semid).remove()
    }
    let channel = try MessageChannel.open(id: id)
    #expect(channel.capacity == 5 && channel.maxMessageSize == 100)
    try await channel.send([7, 7, 7], type: 9)
    #expect(try await channel.receive() == ([7, 7, 7], 9))
  }
}
