import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The objects of a counter run: the segment (counter and slots, see the helper's
/// `CounterLayout`), the lock (1) and the start gate (1 until the test opens it).
private struct CounterRun {
  let memory: SharedMemory
  let lock: SysVIPC.Semaphore
  let gate: SysVIPC.Semaphore

  init() throws {
    memory = try makeSharedMemory(size: 4096, initCharacter: 0)
    lock = try makeSemaphore(initialValue: 1)
    gate = try makeSemaphore(initialValue: 1)
  }

  func remove() {
    try? memory.remove()
    try? lock.remove()
    try? gate.remove()
  }

  func arguments(count: Int, slot: Int, unlocked: Bool = false) -> [String] {
    ["load-count", String(memory.id), String(lock.id), String(gate.id), String(count)]
      + ["--slot", String(slot)] + (unlocked ? ["--unlocked"] : [])
  }

  var counter: UInt64 {
    get throws { try memory.read(count: 8).withUnsafeBytes { $0.load(as: UInt64.self) } }
  }

  /// Slot `index`: sections completed, and whether its worker is inside one.
  func slot(_ index: Int) throws -> (done: UInt64, inside: Bool) {
    let bytes = try memory.read(count: 16, offset: 64 + 16 * index)
    return bytes.withUnsafeBytes {
      ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self) != 0)
    }
  }
}

/// Starts `workers` once all printed `ready=yes`, by opening the gate.
private func openGate(_ gate: SysVIPC.Semaphore, after workers: [HelperProcess]) async throws {
  for worker in workers { try await worker.waitForLine("ready", "yes", timeout: .seconds(60)) }
  try gate.setValue(0)
}

/// The checksum `load-consume` computes, here from first principles: the wrapping sum of
/// splitmix64 over every (producer, sequence) that should arrive.
private func expectedChecksum(producers: Int, count: Int) -> UInt64 {
  var sum: UInt64 = 0
  for producer in 0..<producers {
    for sequence in 0..<count {
      var z = (UInt64(producer) << 32 | UInt64(sequence)) &+ 0x9E37_79B9_7F4A_7C15
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      sum &+= z ^ (z >> 31)
    }
  }
  return sum
}

/// Load: real processes (the test helper, nice 10), run one test at a time.
@Suite("Reliability: load", .tags(.reliability), .serialized, .timingSensitive)
struct ReliabilityLoadTests {
  static let workers = 8
  static let increments = 20_000
  static let kills = 20

  /// 8 processes × 20,000 increments of a 64-bit counter in a segment, each under the lock
  /// (with a yield between load and store, as in the control): exactly 160,000, and every
  /// worker's slot says 20,000.
  @Test func lockedIncrementsFromEightProcessesLoseNothing() async throws {
    let run = try CounterRun()
    defer { run.remove() }
    let group = HelperGroup()
    defer { group.killAll() }
    let workers = try (0..<Self.workers).map {
      try group.start(run.arguments(count: Self.increments, slot: $0))
    }
    try await openGate(run.gate, after: workers)
    let clock = ContinuousClock()
    let start = clock.now
    for worker in workers {
      let outcome = try await worker.outcome(timeout: .seconds(120))
      #expect(outcome.ok, "\(outcome.output)")
    }
    let seconds = (clock.now - start) / .seconds(1)
    let total = UInt64(Self.workers * Self.increments)
    #expect(try run.counter == total)
    for index in 0..<Self.workers {
      #expect(try run.slot(index) == (UInt64(Self.increments), false))
    }
    #expect(try run.lock.value == 1)
    reportFigure(
      "locked counter: \(Self.workers) processes × \(Self.increments) = \(try run.counter) "
        + "in \(String(format: "%.2f", seconds)) s, 0 lost")
  }

  /// The control: the same load without the lock loses updates, so the check above can fail.
  @Test func theUnlockedControlLosesUpdates() async throws {
    let run = try CounterRun()
    defer { run.remove() }
    let group = HelperGroup()
    defer { group.killAll() }
    let workers = try (0..<Self.workers).map {
      try group.start(run.arguments(count: Self.increments, slot: $0, unlocked: true))
    }
    try await openGate(run.gate, after: workers)
    for worker in workers {
      let outcome = try await worker.outcome(timeout: .seconds(120))
      #expect(outcome.ok, "\(outcome.output)")
    }
    let total = UInt64(Self.workers * Self.increments)
    let counter = try run.counter
    #expect(counter < total, "the unlocked control lost no update: the race never happened")
    reportFigure("unlocked control: \(counter) of \(total), \(total - counter) updates lost")
  }

  /// The locked run while the test SIGKILLs a worker every 20-80 ms (20 times: at random, or,
  /// every other time, the one holding the lock, found with all workers stopped) and starts a
  /// replacement that does the rest of its share. The lock uses SEM_UNDO, so a worker killed
  /// while holding it gives it back.
  ///
  /// What can be checked honestly: every slot counts its completed sections, and its "inside"
  /// flag is set from before the counter is read until after the slot is counted. A worker
  /// killed inside may or may not have stored its increment, so
  /// sum(slots) ≤ counter ≤ sum(slots) + (killed workers whose flag is still set); workers that
  /// finished have their flag clear. The replacements bring sum(slots) to exactly 160,000.
  /// Never deadlocks: every worker ends, and the lock ends at 1 with no waiter.
  @Test func killingWorkersMidRunNeverDeadlocksAndLosesNoSection() async throws {
    let run = try CounterRun()
    defer { run.remove() }
    let group = HelperGroup()
    defer { group.killAll() }
    var live: [(slot: Int, helper: HelperProcess)] = try (0..<Self.workers).map {
      ($0, try group.start(run.arguments(count: Self.increments, slot: $0)))
    }
    try await openGate(run.gate, after: live.map(\.helper))
    let clock = ContinuousClock()
    let start = clock.now
    var killedSlots: [Int] = []
    var killedHolding = 0
    var nextSlot = Self.workers
    // Each slot's share: 20,000 for the first workers, the rest of a killed one's share for
    // its replacement.
    var shares = Array(repeating: Self.increments, count: Self.workers)
    var generator = SystemRandomNumberGenerator()
    while killedSlots.count < Self.kills {
      try await Task.sleep(for: .milliseconds(Int.random(in: 5...25, using: &generator)))
      let running = live.indices.filter { live[$0].helper.value("increments") == nil }
      guard var victim = running.randomElement(using: &generator) else { break }
      if killedSlots.count % 2 == 0 {
        // Every other kill targets the lock's holder: stop every worker, find the holder
        // (the lock is taken and its last semop was the holder's acquire), kill it, and let
        // the others go on (their semop is interrupted by the stop and retried).
        let stopped = running.map { live[$0].helper }
        for helper in stopped { helper.signal(SIGSTOP) }
        try await waitUntil("the workers are stopped") {
          stopped.allSatisfy { $0.state == "T" || $0.state == "Z" }
        }
        let holder = try run.lock.value == 0 ? try run.lock.lastPID : 0
        if let index = running.first(where: { live[$0].helper.pid == holder }) {
          victim = index
          killedHolding += 1
        }
        live[victim].helper.signal(SIGKILL)
        for helper in stopped { helper.signal(SIGCONT) }
      }
      let (slot, helper) = live.remove(at: victim)
      await helper.terminate()
      killedSlots.append(slot)
      // The replacement does what the killed worker had not completed.
      let remaining = shares[slot] - Int(try run.slot(slot).done)
      // A worker killed after its last section has nothing left to replace.
      if remaining > 0 {
        live.append((nextSlot, try group.start(run.arguments(count: remaining, slot: nextSlot))))
        shares.append(remaining)
        nextSlot += 1
      }
    }
    for (_, helper) in live {
      let outcome = try await helper.outcome(timeout: .seconds(120))
      #expect(outcome.ok, "\(outcome.output)")
    }
    let seconds = (clock.now - start) / .seconds(1)
    var completed: UInt64 = 0
    var killedInside: UInt64 = 0
    for index in 0..<nextSlot {
      let (done, inside) = try run.slot(index)
      completed += done
      if inside {
        #expect(killedSlots.contains(index), "slot \(index) finished but says it is inside")
        killedInside += 1
      }
    }
    let counter = try run.counter
    let total = UInt64(Self.workers * Self.increments)
    #expect(completed == total, "the replacements completed every share")
    #expect(counter >= completed, "a completed section was lost")
    #expect(counter <= completed + killedInside, "more increments than sections")
    #expect(try run.lock.value == 1, "the lock ended taken")
    #expect(try run.lock.waitingForNonzero == 0)
    // The kills come every 5-25 ms; on a slow machine the workers may all finish first.
    #expect(killedSlots.count >= Self.kills / 2, "the run ended after \(killedSlots.count) kills")
    #expect(killedHolding > 0, "no worker was killed while holding the lock")
    reportFigure(
      "counter with kills: \(killedSlots.count) workers SIGKILLed (\(killedHolding) holding "
        + "the lock, \(killedInside) inside the section), \(nextSlot - Self.workers) replacements, counter \(counter), completed "
        + "sections \(completed), lock \(try run.lock.value), "
        + "\(String(format: "%.2f", seconds)) s")
  }

  enum MessageLoad: String, CaseIterable, Sendable {
    /// The system's default capacity (msgmnb).
    case defaultCapacity
    /// A 512-byte queue: producers block in msgsnd most of the time.
    case smallCapacity
    /// The small queue, while the test sends SIGUSR1 to every worker (half of them with
    /// SA_RESTART) every 5 ms and stops and continues a random one every 50 ms.
    case smallCapacityWithSignals
  }

  /// 4 producers × 20,000 typed messages (8-64 bytes; type = sequence % 4 + 1) to 4
  /// consumers, one per type: each consumer receives 20,000 with no duplicate and no corrupt
  /// message, and the sum of the consumers' checksums equals the checksum of all 80,000
  /// messages computed here: every message arrived exactly once.
  @Test(arguments: MessageLoad.allCases)
  func everyMessageArrivesExactlyOnce(_ load: MessageLoad) async throws {
    let producers = 4
    let consumers = 4
    let count = 20_000
    let queue = try makeMessageQueue(maxMessageSize: 128)
    defer { try? queue.remove() }
    let gate = try makeSemaphore(initialValue: 1)
    defer { try? gate.remove() }
    if load != .defaultCapacity { try queue.setMaxSize(512) }
    let signals = load == .smallCapacityWithSignals
    let group = HelperGroup()
    defer { group.killAll() }
    func handler(_ index: Int) -> [String] {
      signals ? [index % 2 == 0 ? "--sigusr1" : "--sigusr1-restart"] : []
    }
    let consumerHelpers = try (0..<consumers).map { index in
      try group.start(
        handler(index) + [
          "load-consume", String(queue.id), String(index), String(count * producers / consumers),
          String(gate.id),
        ])
    }
    let producerHelpers = try (0..<producers).map { index in
      try group.start(
        handler(index + 1) + [
          "load-produce", String(queue.id), String(index), String(count), String(consumers),
          String(gate.id),
        ])
    }
    let everyone = consumerHelpers + producerHelpers
    try await openGate(gate, after: everyone)
    let clock = ContinuousClock()
    let start = clock.now
    var signalsSent = 0
    var stops = 0
    if signals {
      var generator = SystemRandomNumberGenerator()
      var round = 0
      while consumerHelpers.contains(where: { $0.value("count") == nil }),
        clock.now - start < .seconds(120)
      {
        for helper in everyone where helper.value("seconds") == nil {
          helper.signal(SIGUSR1)
          signalsSent += 1
        }
        round += 1
        if round % 10 == 0, let victim = everyone.randomElement(using: &generator) {
          victim.signal(SIGSTOP)
          try await Task.sleep(for: .milliseconds(2))
          victim.signal(SIGCONT)
          stops += 1
        }
        try await Task.sleep(for: .milliseconds(5))
      }
    }
    var received = 0
    var checksum: UInt64 = 0
    var signalsSeen = 0
    for helper in producerHelpers {
      let outcome = try await helper.outcome(timeout: .seconds(120))
      #expect(outcome.ok, "\(outcome.output)")
      #expect(outcome.value("sent") == String(count))
      signalsSeen += Int(outcome.value("signals") ?? "") ?? 0
    }
    for helper in consumerHelpers {
      let outcome = try await helper.outcome(timeout: .seconds(120))
      #expect(outcome.ok, "\(outcome.output)")
      #expect(outcome.value("count") == String(count * producers / consumers), "\(outcome.output)")
      #expect(outcome.value("duplicates") == "0", "\(outcome.output)")
      #expect(outcome.value("corrupt") == "0", "\(outcome.output)")
      received += Int(outcome.value("count") ?? "") ?? 0
      checksum &+= UInt64(outcome.value("checksum") ?? "") ?? 0
      signalsSeen += Int(outcome.value("signals") ?? "") ?? 0
    }
    let seconds = (clock.now - start) / .seconds(1)
    #expect(received == producers * count)
    #expect(checksum == expectedChecksum(producers: producers, count: count))
    #expect(try queue.currentMessages == 0)
    if signals {
      #expect(signalsSeen > 0 && signalsSeen <= signalsSent, "\(signalsSeen) of \(signalsSent)")
    }
    reportFigure(
      "messages \(load): \(producers) producers × \(count) → \(consumers) consumers, "
        + "\(received) received once each, 0 lost, capacity \(try queue.maxSize) bytes, "
        + "\(String(format: "%.2f", seconds)) s"
        + (signals ? ", \(signalsSeen) signals handled, \(stops) stop/continue" : ""))
  }
}
