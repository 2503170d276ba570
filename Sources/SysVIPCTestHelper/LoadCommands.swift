import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The load workers of the reliability tests (issue 7). Each prints `ready=yes`, waits until the
/// gate semaphore GATE is zero (so that all start together; replacements find it open), works,
/// and prints its figures. Workers lower their priority (nice 10) so that a load run disturbs
/// the timing of tests running beside it as little as possible.
///
/// load-count SHM SEM GATE COUNT [--slot K] [--unlocked]
///     COUNT increments of the 64-bit counter at offset 0 of segment SHM. Locked (the default):
///     each holds semaphore SEM (with SEM_UNDO) and marks its section in slot K
///     (``CounterLayout``): inside=1, counter += 1, done += 1, inside=0. `--unlocked` is the
///     control: the same load, yield, store, without the semaphore. Both yield between the load
///     and the store of the counter, which widens the window a lost update needs.
/// load-produce QUEUE PRODUCER COUNT CONSUMERS GATE
///     sends COUNT messages; message i has type i % CONSUMERS + 1 (one type per consumer)
/// load-consume QUEUE CONSUMER EXPECTED GATE
///     receives EXPECTED messages of type CONSUMER + 1 and checks each; prints count,
///     duplicates, corrupt and checksum (the wrapping sum of ``messageHash``)
func loadCommand(_ command: String, _ args: inout Arguments) throws {
  #if canImport(Glibc)
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
  #else
    setpriority(PRIO_PROCESS, 0, 10)
  #endif
  switch command {
  case "load-count":
    let unlocked = args.flag("unlocked")
    let slot = args.option("slot").flatMap(Int.init) ?? 0
    let memory = try SharedMemory.attach(id: args.int32("shm"))
    var lock = try Semaphore(id: args.int32("sem"))
    lock.undo = true
    let gate = try Semaphore(id: args.int32("gate"))
    let count = Int(args.next("count")) ?? 0
    guard let base = memory.address.map(UnsafeMutableRawPointer.init(mutating:)),
      CounterLayout.size(slots: slot + 1) <= memory.size
    else { fail("segment too small for slot \(slot)") }
    let counter = CounterLayout.counter(base)
    let (done, inside) = CounterLayout.slot(base, slot)
    report("ready", "yes")
    try gate.waitForZero()
    let start = monotonicSeconds()
    for _ in 0..<count {
      if unlocked {
        let value = counter.pointee.load(ordering: .relaxed)
        sched_yield()
        counter.pointee.store(value &+ 1, ordering: .relaxed)
        continue
      }
      try lock.acquire()
      inside.pointee.store(1, ordering: .sequentiallyConsistent)
      let value = counter.pointee.load(ordering: .sequentiallyConsistent)
      sched_yield()
      counter.pointee.store(value &+ 1, ordering: .sequentiallyConsistent)
      done.pointee.store(
        done.pointee.load(ordering: .relaxed) &+ 1, ordering: .sequentiallyConsistent)
      inside.pointee.store(0, ordering: .sequentiallyConsistent)
      try lock.release()
    }
    withExtendedLifetime(memory) {}
    report("increments", String(count))
    report("seconds", String(monotonicSeconds() - start))
  case "load-produce":
    let queue = try MessageQueue(id: args.int32("queue"), maxMessageSize: 128)
    let producer = UInt32(args.next("producer")) ?? 0
    let count = UInt32(args.next("count")) ?? 0
    let consumers = UInt32(args.next("consumers")) ?? 1
    let gate = try Semaphore(id: args.int32("gate"))
    var buffer = [UInt8](repeating: 0, count: 128)
    report("ready", "yes")
    try gate.waitForZero()
    let start = monotonicSeconds()
    for sequence in 0..<count {
      let length = LoadMessage.encode(producer: producer, sequence: sequence, into: &buffer)
      try buffer.withUnsafeBytes { raw in
        try queue.send(
          UnsafeRawBufferPointer(rebasing: raw[..<length]), type: Int(sequence % consumers) + 1)
      }
    }
    report("sent", String(count))
    report("seconds", String(monotonicSeconds() - start))
  case "load-consume":
    let queue = try MessageQueue(id: args.int32("queue"), maxMessageSize: 128)
    let consumer = Int(args.next("consumer")) ?? 0
    let expected = Int(args.next("expected")) ?? 0
    let gate = try Semaphore(id: args.int32("gate"))
    var buffer = [UInt8](repeating: 0, count: 128)
    var seen = Set<UInt64>()
    var duplicates = 0
    var corrupt = 0
    var checksum: UInt64 = 0
    report("ready", "yes")
    try gate.waitForZero()
    let start = monotonicSeconds()
    for _ in 0..<expected {
      let (count, type) = try buffer.withUnsafeMutableBytes { raw in
        try queue.receive(into: raw, type: consumer + 1)
      }
      guard type == consumer + 1,
        let (producer, sequence) = LoadMessage.decode(buffer, count: count)
      else {
        corrupt += 1
        continue
      }
      let identity = UInt64(producer) << 32 | UInt64(sequence)
      if !seen.insert(identity).inserted { duplicates += 1 }
      checksum &+= LoadMessage.hash(producer: producer, sequence: sequence)
    }
    report("count", String(seen.count))
    report("duplicates", String(duplicates))
    report("corrupt", String(corrupt))
    report("checksum", String(checksum))
    report("seconds", String(monotonicSeconds() - start))
  default:
    fail("unknown command \(command)")
  }
}

/// The counter segment: the counter at offset 0, then one 16-byte slot per worker (the number of
/// sections it completed, and whether it is inside one now), from offset 64.
enum CounterLayout {
  typealias Cell = UnsafeMutablePointer<Atomic<UInt64>>

  static func size(slots: Int) -> Int { 64 + 16 * slots }

  static func counter(_ base: UnsafeMutableRawPointer) -> Cell {
    base.assumingMemoryBound(to: Atomic<UInt64>.self)
  }

  static func slot(_ base: UnsafeMutableRawPointer, _ index: Int) -> (done: Cell, inside: Cell) {
    let start = base + 64 + 16 * index
    return (
      start.assumingMemoryBound(to: Atomic<UInt64>.self),
      (start + 8).assumingMemoryBound(to: Atomic<UInt64>.self)
    )
  }
}

/// A load message: producer (4 bytes), sequence (4 bytes), then 0...56 bytes of a pattern that
/// both numbers determine, so that a consumer can tell a corrupt or mixed-up message.
enum LoadMessage {
  static func encode(producer: UInt32, sequence: UInt32, into buffer: inout [UInt8]) -> Int {
    let length = 8 + Int((producer &* 7 &+ sequence) % 57)
    buffer.withUnsafeMutableBytes { raw in
      raw.storeBytes(of: producer.littleEndian, toByteOffset: 0, as: UInt32.self)
      raw.storeBytes(of: sequence.littleEndian, toByteOffset: 4, as: UInt32.self)
    }
    for i in 8..<length { buffer[i] = pattern(producer, sequence, i) }
    return length
  }

  static func decode(_ buffer: [UInt8], count: Int) -> (UInt32, UInt32)? {
    guard count >= 8 else { return nil }
    let (producer, sequence) = buffer.withUnsafeBytes { raw in
      (
        UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
        UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
      )
    }
    guard count == 8 + Int((producer &* 7 &+ sequence) % 57) else { return nil }
    for i in 8..<count where buffer[i] != pattern(producer, sequence, i) { return nil }
    return (producer, sequence)
  }

  private static func pattern(_ producer: UInt32, _ sequence: UInt32, _ index: Int) -> UInt8 {
    UInt8(truncatingIfNeeded: producer &* 31 &+ sequence &* 17 &+ UInt32(index))
  }

  /// splitmix64 of the message's identity: the checksum is the wrapping sum of these.
  static func hash(producer: UInt32, sequence: UInt32) -> UInt64 {
    var z = (UInt64(producer) << 32 | UInt64(sequence)) &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
