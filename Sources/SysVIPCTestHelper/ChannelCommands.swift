import SysVIPC
import SysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The channel's helper commands (issue 13). Messages follow ``ChannelMessage``, which the C
/// peer (Sources/SysVIPCChannelC) implements too, so either side can check the other's.
///
/// chan-produce ID PRODUCER COUNT MAXSIZE [--seed S] [--hold-at N] [--gate SEM]
///     sends COUNT messages of ``ChannelMessage`` (type PRODUCER + 1); prints ready=yes first,
///     then sent=COUNT and checksum=. `--hold-at N`: message N is reserved and never committed
///     (the helper prints holding=yes inside the fill and waits for its kill). `--gate`: waits
///     until semaphore SEM is zero before sending; `--linger SEM`: stays (a live producer) after
///     sending until semaphore SEM is zero.
/// chan-consume ID COUNT [--ends] [--into] [--until P:N]
///     receives COUNT messages (or, with --ends, until every producer has gone), checks each one
///     and the order per producer; prints received=, checksum=, corrupt=, disorder= and
///     per-producer counts p<N>= and checksums c<N>=.
/// chan-race KEY GATE CAPACITY MAXSIZE
///     openOrCreate at KEY once GATE is zero; prints created=yes|no, id= and semid=.
/// chan-open ID       opens the channel and receives without waiting (for permission tests).
/// chan-pid-namespace  prints namespace=, the link /proc/self/ns/pid (this process's PID namespace)
/// chan-wait-receive ID      prints waiting=yes, then receives, blocking.
/// chan-wait-send ID         fills the channel, prints waiting=yes, then sends, blocking.
func channelCommand(_ command: String, _ args: inout Arguments) throws {
  if command == "chan-produce" || command == "chan-consume" {
    // Load workers: nice 10, as the reliability load's, so that they disturb the timing of
    // tests running beside them as little as possible.
    #if canImport(Glibc)
      setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
    #else
      setpriority(PRIO_PROCESS, 0, 10)
    #endif
  }
  switch command {
  case "chan-produce":
    let seed = UInt32(args.option("seed") ?? "1") ?? 1
    let holdAt = args.option("hold-at").flatMap(Int.init)
    let gate = try args.option("gate").flatMap(Int32.init).map { try Semaphore(id: $0) }
    let linger = try args.option("linger").flatMap(Int32.init).map { try Semaphore(id: $0) }
    let channel = try MessageChannel.open(id: args.int32("id"))
    let producer = UInt32(args.int32("producer"))
    let count = Int(args.int32("count"))
    let maxSize = Int(args.int32("maxsize"))
    report("ready", "yes")
    try gate?.waitForZero()
    var checksum: UInt64 = 0
    for sequence in 0..<count {
      let size = ChannelMessage.size(
        producer: producer, sequence: UInt32(sequence), seed: seed, max: maxSize)
      checksum &+= try sendOne(
        channel, producer: producer, sequence: UInt32(sequence), size: size,
        hold: sequence == holdAt)
    }
    report("sent", String(count))
    report("checksum", String(checksum))
    try linger?.waitForZero()
  case "chan-consume":
    let ends = args.flag("ends")
    let into = args.flag("into")
    let channel = try MessageChannel.open(id: args.int32("id"))
    channel.endsWhenProducersGone = ends
    let expected = Int(args.int32("count"))
    var tally = ChannelMessage.Tally()
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: channel.maxMessageSize, alignment: 16)
    defer { buffer.deallocate() }
    report("ready", "yes")
    // --until P:N: until producer P's N messages have arrived (whatever came before them).
    let until = args.option("until").map { option -> (producer: UInt32, count: Int) in
      let parts = option.split(separator: ":")
      guard parts.count == 2, let producer = UInt32(parts[0]), let count = Int(parts[1]) else {
        fail("--until \(option) is not PRODUCER:COUNT")
      }
      return (producer, count)
    }
    while ends || until != nil || tally.received < expected {
      guard try receiveOne(channel, into: into ? buffer : nil, &tally) else { break }
      if let until, tally.counts[until.producer] == until.count { break }
    }
    tally.report()
  case "chan-race":
    let key = args.key()
    let gate = try Semaphore(id: args.int32("gate"))
    let capacity = Int(args.int32("capacity"))
    let maxSize = Int(args.int32("maxsize"))
    report("ready", "yes")
    try gate.waitForZero()
    let channel = try MessageChannel.openOrCreateReportingCreation(
      key: key, capacity: capacity, maxMessageSize: maxSize, timeout: .seconds(30))
    report("created", channel.created ? "yes" : "no")
    report("id", String(channel.channel.id))
    report("semid", String(channel.channel.semaphoreSetID))
    report("capacity", String(channel.channel.capacity))
  case "chan-pid-namespace":
    report("namespace", symbolicLink("/proc/self/ns/pid") ?? "?")
  case "chan-open":
    let channel = try MessageChannel.open(id: args.int32("id"))
    _ = try channel.receive(block: false)
  case "chan-wait-receive":
    let channel = try MessageChannel.open(id: args.int32("id"))
    report("waiting", "yes")
    _ = try channel.receive()
  case "chan-wait-send":
    let channel = try MessageChannel.open(id: args.int32("id"))
    while (try? channel.send([1, 2, 3], block: false)) != nil {}
    report("waiting", "yes")
    try channel.send([1, 2, 3])
  default:
    fail("unknown command \(command)")
  }
}

/// Sends message SEQUENCE of PRODUCER in place; returns its hash.
private func sendOne(
  _ channel: MessageChannel, producer: UInt32, sequence: UInt32, size: Int, hold: Bool
) throws(IPCError) -> UInt64 {
  var hash: UInt64 = 0
  try channel.reserve(count: size, type: Int(producer) + 1) { buffer in
    ChannelMessage.fill(buffer, producer: producer, sequence: sequence)
    if hold { holdInsideFill() }
    hash = ChannelMessage.hash(UnsafeRawBufferPointer(buffer))
    return size
  }
  return hash
}

private func holdInsideFill() {
  report("holding", "yes")
  while true { pause() }
}

/// Receives one message into `tally` (in place, or through `buffer`); false when every producer
/// has gone.
private func receiveOne(
  _ channel: MessageChannel, into buffer: UnsafeMutableRawBufferPointer?,
  _ tally: inout ChannelMessage.Tally
) throws(IPCError) -> Bool {
  do throws(IPCError) {
    if let buffer {
      let (count, type) = try channel.receive(into: buffer, timeout: .seconds(60))
      tally.add(UnsafeRawBufferPointer(rebasing: buffer[..<count]), type: type)
    } else {
      try channel.withReceived(timeout: .seconds(60)) { message, type in
        tally.add(message, type: type)
      }
    }
    return true
  } catch {
    if channel.endsWhenProducersGone && error.isProducersGone { return false }
    throw error
  }
}

/// The messages of the load tests, checkable on their own: bytes 0..<4 are the producer and
/// 4..<8 the sequence number (little-endian), and byte k ≥ 8 is (producer × 31 + sequence × 7 +
/// k) mod 256. A torn or foreign message fails the check.
enum ChannelMessage {
  static func size(producer: UInt32, sequence: UInt32, seed: UInt32, max: Int) -> Int {
    var x = seed &* 2_654_435_761 ^ producer &* 40503 ^ sequence &* 2_246_822_519
    x ^= x >> 15
    x = x &* 2_246_822_519
    x ^= x >> 13
    return 8 + Int(x % UInt32(max - 7))
  }

  static func byte(producer: UInt32, sequence: UInt32, at k: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: producer &* 31 &+ sequence &* 7 &+ UInt32(truncatingIfNeeded: k))
  }

  static func fill(_ buffer: UnsafeMutableRawBufferPointer, producer: UInt32, sequence: UInt32) {
    buffer.storeBytes(of: producer.littleEndian, toByteOffset: 0, as: UInt32.self)
    buffer.storeBytes(of: sequence.littleEndian, toByteOffset: 4, as: UInt32.self)
    for k in 8..<buffer.count { buffer[k] = byte(producer: producer, sequence: sequence, at: k) }
  }

  /// FNV-1a, 64-bit.
  static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return h
  }

  struct Tally {
    var received = 0
    var checksum: UInt64 = 0
    var corrupt = 0
    var disorder = 0
    var next: [UInt32: UInt32] = [:]
    var counts: [UInt32: Int] = [:]
    var checksums: [UInt32: UInt64] = [:]

    mutating func add(_ message: UnsafeRawBufferPointer, type: Int) {
      received += 1
      let hash = ChannelMessage.hash(message)
      checksum &+= hash
      guard message.count >= 8 else {
        corrupt += 1
        return
      }
      let producer = UInt32(littleEndian: message.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
      let sequence = UInt32(littleEndian: message.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
      var intact = type == Int(producer) + 1
      for k in 8..<message.count
      where message[k] != byte(producer: producer, sequence: sequence, at: k) {
        intact = false
        break
      }
      if !intact { corrupt += 1 }
      // In order per producer: each sequence number is the one after the last (a killed
      // producer's abandoned message may leave a gap of one, only where it was killed).
      if let expected = next[producer], sequence != expected { disorder += 1 }
      next[producer] = sequence &+ 1
      counts[producer, default: 0] += 1
      checksums[producer, default: 0] &+= hash
    }

    func report() {
      SysVIPCTestHelper.report("received", String(received))
      SysVIPCTestHelper.report("checksum", String(checksum))
      SysVIPCTestHelper.report("corrupt", String(corrupt))
      SysVIPCTestHelper.report("disorder", String(disorder))
      for (producer, count) in counts.sorted(by: { $0.key < $1.key }) {
        SysVIPCTestHelper.report("p\(producer)", String(count))
        SysVIPCTestHelper.report("c\(producer)", String(checksums[producer] ?? 0))
      }
    }
  }
}
