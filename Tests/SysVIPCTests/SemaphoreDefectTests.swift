import Foundation
import SysVIPC
import Testing

/// Regression tests for issue 18's semaphore items (3, 4, 5, 14): each failed before its fix.
@Suite("Semaphore defects (issue 18)")
struct SemaphoreDefectTests {
  /// A key that names no semaphore now: drawn by creating a semaphore and removing it.
  func unusedSemaphoreKey() throws -> IPCKey {
    let probe = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    try probe.remove()
    return probe.key
  }

  // Item 3: the "initialised" mark must not push a semaphore at maxValue out of range.
  @Test func openOrCreateAtMaxValueInitialises() throws {
    let key = try unusedSemaphoreKey()
    let (semaphore, created) = try SysVIPC.Semaphore.openOrCreateReportingCreation(
      key: key, initialValue: SysVIPC.Semaphore.maxValue)
    defer { try? semaphore.remove() }
    #expect(created)
    #expect(try semaphore.value == SysVIPC.Semaphore.maxValue)
    #expect(try semaphore.lastOperationTime != nil, "the initialised mark is set")
    // Another opener finds it initialised, without waiting.
    let again = try SysVIPC.Semaphore.openOrCreate(key: key, timeout: .milliseconds(100))
    #expect(again.id == semaphore.id)
  }

  @Test func setOpenOrCreateAtMaxValueInitialises() throws {
    let key = try unusedSemaphoreKey()
    let max = SysVIPC.Semaphore.maxValue
    let set = try SemaphoreSet.openOrCreate(key: key, count: 2, initialValues: [max, 0])
    defer { try? set.remove() }
    #expect(try set.values() == [max, 0])
    let zero = try SemaphoreSet.openOrCreate(key: key, count: 2, timeout: .milliseconds(100))
    #expect(zero.id == set.id)
  }

  // Item 4: Semaphore(key:) refuses a set of more than one, as Semaphore(id:) does.
  @Test func semaphoreByKeyRefusesASetOfThree() throws {
    let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    defer { try? set.remove() }
    for flags: IPCFlags in [[], .create] {
      let error = expectIPCError(.invalidArgument) {
        try SysVIPC.Semaphore(key: set.key, flags: flags)
      }
      #expect(error?.message.contains("SemaphoreSet") == true, "\(String(describing: error))")
      #expect(error?.message.contains("3") == true, "\(String(describing: error))")
    }
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(id: set.id) }
    #expect(try set.values() == [0, 0, 0], "nothing changed")
  }

  // Item 5: openOrCreate on a set of another size refuses at once instead of waiting.
  @Test func openOrCreateOnASetOfThreeRefusesAtOnce() throws {
    let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    defer { try? set.remove() }
    let (error, seconds) = elapsed {
      expectIPCError(.invalidArgument) {
        try SysVIPC.Semaphore.openOrCreate(key: set.key, timeout: .seconds(20))
      }
    }
    #expect(seconds < 10, "refused before the timeout: \(seconds) s")
    #expect(error?.message.contains("SemaphoreSet") == true, "\(String(describing: error))")
    let setError = expectIPCError(.invalidArgument) {
      try SemaphoreSet.openOrCreate(key: set.key, count: 2, timeout: .seconds(20))
    }
    #expect(setError?.message.contains("3") == true, "\(String(describing: setError))")
    #expect(try set.status().lastOperationTime == nil, "nothing changed")
  }

  // Item 14: semget's EINVAL for a count is explained.
  @Test func refusedCountsAreExplained() throws {
    let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    defer { try? set.remove() }
    let larger = expectIPCError(.invalidArgument) { try SemaphoreSet(key: set.key, count: 4) }
    #expect(larger?.message.contains("count 4") == true, "\(String(describing: larger))")
    #expect(larger?.message.contains("3 semaphores") == true, "\(String(describing: larger))")
    let semmsl = try #require(try IPCSystem.limits().semmsl)
    let tooMany = expectIPCError(.invalidArgument) {
      let created = try SemaphoreSet(key: nil, count: semmsl + 1, flags: .createExclusive)
      try? created.remove()
    }
    #expect(tooMany?.message.contains("semmsl") == true, "\(String(describing: tooMany))")
    #expect(tooMany?.message.contains("\(semmsl + 1)") == true, "\(String(describing: tooMany))")
  }
}
