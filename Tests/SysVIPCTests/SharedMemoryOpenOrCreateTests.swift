import Foundation
import SysVIPC
import Testing

@Suite("SharedMemory: race-free open-or-create")
struct SharedMemoryOpenOrCreateTests {
  @Test func eightProcessesShareOneZeroFilledSegment() async throws {
    let probe = try SharedMemory(key: nil, flags: .createExclusive)
    let key = probe.key
    try probe.remove()
    let gate = try makeSemaphore(initialValue: 1)
    defer { try? gate.remove() }
    defer { if let m = try? SharedMemory(key: key) { try? m.remove() } }

    let racers = try (0..<8).map { index in
      try HelperProcess([
        "shm-race-open-or-create", "\(key.rawValue)", "\(gate.id)", "4096", "\(index)",
      ])
    }
    try await waitUntil("all eight wait at the gate") { try gate.waitingForZero == 8 }
    try gate.setValue(0)
    var created = 0
    for racer in racers {
      let outcome = try await racer.outcome()
      #expect(outcome.ok, "\(outcome.output)")
      if outcome.value("created") == "yes" { created += 1 }
    }
    #expect(created == 1)
    let memory = try SharedMemory.openOrCreate(key: key, size: 4096)
    #expect(memory.size == 4096)
    // Every racer's byte survived: nobody re-created or re-initialised the segment.
    #expect(
      try memory.read(count: 16) == [UInt8](repeating: 1, count: 8)
        + [UInt8](repeating: 0, count: 8))
  }

  @Test func aSegmentOfAnotherSizeIsRefused() throws {
    let existing = try SharedMemory(key: nil, flags: .createExclusive, size: 100)
    defer { try? existing.remove() }
    expectIPCError(.invalidArgument) { try SharedMemory.openOrCreate(key: existing.key, size: 200) }
    expectIPCError(.invalidArgument) { try SharedMemory.openOrCreate(key: existing.key, size: 50) }
    expectIPCError(.invalidArgument) { try SharedMemory.openOrCreate(key: existing.key, size: 0) }
    expectIPCError(.invalidArgument) { try SharedMemory.openOrCreate(key: .private, size: 10) }
    let (opened, created) = try SharedMemory.openOrCreateReportingCreation(
      key: existing.key, size: 100)
    #expect(!created)
    #expect(opened.id == existing.id)
  }
}
