// The semaphore examples of the articles "Creating Objects Safely", "Semaphore Sets",
// "Lifetimes and Cleanup" and "Errors", compiled and run.
//
// Where an article speaks of several processes, these tests run its code on several threads of
// one process, each with handles of its own; the kernel treats them alike. The package's own
// tests run the same calls in real processes (see the names cited below).
import SysVIPC
import Testing

// CreatingSafely.md: every worker runs this at startup.
/// Joins the pool of 3 licences shared by the workers: the first worker to arrive creates the
/// semaphore and sets it to 3; the others wait until it has, then share it.
func joinLicencePool(key: IPCKey) throws(IPCError) -> SysVIPC.Semaphore {
  try SysVIPC.Semaphore.openOrCreate(key: key, initialValue: 3, timeout: .seconds(10))
}

// SemaphoreSets.md: the dining philosophers.
/// Philosopher `seat` eats with the forks on both sides, taken together: nobody ever holds one
/// fork while waiting for the other, so the table cannot deadlock.
func dine(at seat: Int, forks: SemaphoreSet) throws(IPCError) {
  let left = seat
  let right = (seat + 1) % forks.count
  try forks.apply([.init(index: left, delta: -1), .init(index: right, delta: -1)])
  // Eat.
  try forks.apply([.init(index: left, delta: 1), .init(index: right, delta: 1)])
}

// SemaphoreSets.md: all or nothing, without waiting.
/// Takes forks 0 and 1 if both are free now, and neither otherwise.
func takeForksZeroAndOne(_ forks: SemaphoreSet) throws(IPCError) -> Bool {
  do {
    try forks.apply([
      .init(index: 0, delta: -1, nonBlocking: true),
      .init(index: 1, delta: -1, nonBlocking: true),
    ])
    return true
  } catch  where error.kind == .busy {
    // One of them is taken, so neither was taken.
    return false
  }
}

// SemaphoreSets.md: a readers-writer lock.
/// A readers-writer lock shared by processes: semaphore 0 of the set counts writers (0 or 1),
/// semaphore 1 counts readers. Every change is undone if its process dies holding the lock.
struct ReadersWriterLock {
  let set: SemaphoreSet

  func lockForReading() throws(IPCError) {
    // Wait until there is no writer, and count in as a reader, in one step.
    try set.apply([.init(index: 0, delta: 0), .init(index: 1, delta: 1, undo: true)])
  }

  func unlockForReading() throws(IPCError) {
    try set.apply([.init(index: 1, delta: -1, undo: true)])
  }

  func lockForWriting() throws(IPCError) {
    // Wait until there is no writer and no reader, and count in as the writer, in one step.
    try set.apply([
      .init(index: 0, delta: 0), .init(index: 1, delta: 0), .init(index: 0, delta: 1, undo: true),
    ])
  }

  func unlockForWriting() throws(IPCError) {
    try set.apply([.init(index: 0, delta: -1, undo: true)])
  }
}

@Suite("Documentation examples: creating safely")
struct DocumentationExamplesCreatingSafely {
  @Test func eightWorkersJoinThePoolAndItIsInitialisedOnce() async throws {
    let key = try unusedKeyForExamples()
    defer { if let pool = try? SysVIPC.Semaphore(key: key) { try? pool.remove() } }
    // Eight workers start at once; each takes a licence as soon as it has joined. Were the pool
    // initialised twice, a second SETVAL would hand out more than 3 licences in all.
    let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
      for _ in 0..<8 {
        group.addTask {
          try await onThread {
            let pool = try joinLicencePool(key: key)
            do {
              try pool.acquire(timeout: .zero)
              return true
            } catch let error as IPCError where error.kind == .busy {
              return false
            }
          }
        }
      }
      var count = 0
      for try await took in group where took { count += 1 }
      return count
    }
    #expect(taken == 3)
    #expect(try SysVIPC.Semaphore(key: key).value == 0)
  }

  @Test func reportingCreation() throws {
    let key = try unusedKeyForExamples()
    var createdHere = false
    // CreatingSafely.md: who created it.
    let (pool, created) = try SysVIPC.Semaphore.openOrCreateReportingCreation(
      key: key, initialValue: 3)
    if created {
      // This process made the pool: the place to log it, or to plan its removal.
      createdHere = true
    }
    defer { try? pool.remove() }
    #expect(createdHere)
    let (again, createdAgain) = try SysVIPC.Semaphore.openOrCreateReportingCreation(
      key: key, initialValue: 9)
    #expect(!createdAgain && again.id == pool.id)
    #expect(try pool.value == 3)
  }

  @Test func aSetOpenedOrCreated() throws {
    let key = try unusedKeyForExamples()
    // CreatingSafely.md: a set.
    let slots = try SemaphoreSet.openOrCreate(key: key, count: 2, initialValues: [8, 0])
    defer { try? slots.remove() }
    #expect(try slots.values() == [8, 0])
    #expect(
      try SemaphoreSet.openOrCreate(key: key, count: 2, initialValues: [1, 1]).id == slots.id)
    #expect(try slots.values() == [8, 0])
  }

  @Test func theRaceThatOpenOrCreateAvoids() throws {
    // CreatingSafely.md shows why `.create` and then `setValue` is unsafe: a second process
    // that opens the semaphore between the two calls has its release wiped out by the SETVAL.
    let key = try unusedKeyForExamples()
    let first = try SysVIPC.Semaphore(key: key, flags: .create)
    defer { try? first.remove() }
    let second = try SysVIPC.Semaphore(key: key, flags: .create)
    try second.release()  // the second process already uses it...
    try first.setValue(1)  // ...and the first "initialises" it: the release is lost
    #expect(try second.value == 1)
  }
}

@Suite("Documentation examples: semaphore sets")
struct DocumentationExamplesSemaphoreSets {
  @Test func transfer() throws {
    // SemaphoreSets.md: a transfer.
    let accounts = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? accounts.remove() }
    try accounts.setValues([100, 0])
    // Move 30 from semaphore 0 to semaphore 1: both changes happen, or neither.
    try accounts.apply([.init(index: 0, delta: -30), .init(index: 1, delta: 30)])
    let balances = try accounts.values()  // [70, 30], one atomic snapshot
    #expect(balances == [70, 30])
    #expect(try accounts.value(at: 1) == 30)
  }

  @Test func philosophers() async throws {
    let forks = try SemaphoreSet(key: nil, count: 5, flags: .createExclusive)
    defer { try? forks.remove() }
    try forks.setValues([1, 1, 1, 1, 1])
    try await withThrowingTaskGroup(of: Void.self) { group in
      for seat in 0..<5 {
        group.addTask {
          try await onThread {
            for _ in 0..<50 { try dine(at: seat, forks: forks) }
          }
        }
      }
      try await group.waitForAll()
    }
    #expect(try forks.values() == [1, 1, 1, 1, 1])
  }

  @Test func allOrNothing() throws {
    let forks = try SemaphoreSet(key: nil, count: 5, flags: .createExclusive)
    defer { try? forks.remove() }
    try forks.setValues([1, 1, 1, 1, 1])
    try forks.setValue(0, at: 1)  // someone holds fork 1
    #expect(try takeForksZeroAndOne(forks) == false)
    #expect(try forks.values() == [1, 0, 1, 1, 1])
    try forks.setValue(1, at: 1)
    #expect(try takeForksZeroAndOne(forks) == true)
    #expect(try forks.values() == [0, 0, 1, 1, 1])
  }

  @Test func readersAndAWriter() async throws {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? set.remove() }
    let lock = ReadersWriterLock(set: set)
    try lock.lockForReading()
    try lock.lockForReading()
    #expect(try set.values() == [0, 2])
    let writer = Task { try await onThread { try lock.lockForWriting() } }
    try await waitUntil("the writer waits for the readers") { try set.waitingForZero(at: 1) == 1 }
    #expect(try set.values() == [0, 2], "the writer took nothing while it waited")
    try lock.unlockForReading()
    try lock.unlockForReading()
    try await writer.value
    #expect(try set.values() == [1, 0])
    let reader = Task { try await onThread { try lock.lockForReading() } }
    try await waitUntil("the reader waits for the writer") { try set.waitingForZero(at: 0) == 1 }
    try lock.unlockForWriting()
    try await reader.value
    #expect(try set.values() == [0, 1])
    try lock.unlockForReading()
  }
}

// LifetimesAndCleanup.md: removed while waiting.
/// Takes the lock, waiting as long as it takes, or reports that it was removed meanwhile.
func takeUnlessRemoved(_ lock: SysVIPC.Semaphore) throws(IPCError) -> String {
  do {
    try lock.acquire()
  } catch  where error.kind == .existential {
    // The semaphore was removed while this process waited (EIDRM).
    return "removed"
  }
  return "acquired"
}

// Errors.md: acting on the kind.
/// Takes the lock if it comes free within 100 ms, and says what happened.
func tryTheLock(_ lock: SysVIPC.Semaphore) throws(IPCError) -> String {
  do {
    try lock.acquire(timeout: .milliseconds(100))
    return "acquired"
  } catch  where error.kind == .busy {
    // Timed out: another process holds it. Try again later, or report who (lock.lastPID).
    return "busy: \(error.message)"
  } catch  where error.kind == .existential {
    // Removed: create it again, or stop.
    return "gone"
  }
}

// Errors.md: what an error carries.
/// Sets the value, and returns the error instead of throwing it.
func setValueReporting(_ value: Int, on lock: SysVIPC.Semaphore) -> IPCError? {
  do {
    try lock.setValue(value)
    return nil
  } catch {
    print(error.kind, error.errno as Any, error.message)
    // outOfRange nil semctl(SETVAL): value -1 is outside 0...32767
    return error
  }
}

@Suite("Documentation examples: lifetimes and errors")
struct DocumentationExamplesLifetimes {
  @Test func removeWhatYouCreate() throws {
    let id: Int32
    do {
      // LifetimesAndCleanup.md: remove what you create.
      let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
      defer { try? semaphore.remove() }
      id = semaphore.id
      #expect(try semaphore.value == 0)
    }
    expectIPCError(.existential) { try SysVIPC.Semaphore(id: id) }
  }

  @Test func undoInThisProcess() throws {
    let created = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? created.remove() }
    let key = created.key
    // LifetimesAndCleanup.md: undo.
    var lock = try SysVIPC.Semaphore(key: key)
    lock.undo = true
    try lock.acquire()
    // If this process dies before it releases, the kernel adds the 1 back.
    #expect(try lock.value == 0)
    try lock.release()
    #expect(try lock.value == 1)
  }

  @Test func undoWhenTheHolderDies() async throws {
    // The dying process of the undo example is the test helper: it acquires with `undo = true`
    // as the example does, and is killed while it holds the semaphore.
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }
    let holder = try HelperProcess(["sem-acquire", "\(lock.id)", "--undo", "--hold"])
    try await holder.waitForLine("acquired", "yes")
    #expect(try lock.value == 0)
    await holder.terminate()
    #expect(try lock.value == 1)
  }

  @Test func removedWhileWaiting() async throws {
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? lock.remove() }
    let waiter = Task { try await onThread { try takeUnlessRemoved(lock) } }
    try await waitUntil("the waiter waits") { try lock.waitingForNonzero == 1 }
    try lock.remove()
    #expect(try await waiter.value == "removed")
  }

  @Test func handlingErrors() throws {
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? lock.remove() }
    let outcome = try tryTheLock(lock)
    #expect(outcome.hasPrefix("busy: semop on semaphore \(lock.id): timed out"), "\(outcome)")
  }

  @Test func whatAnErrorCarries() throws {
    let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? lock.remove() }
    let caught = setValueReporting(-1, on: lock)
    #expect(caught?.kind == .outOfRange && caught?.errno == nil)
    #expect(caught?.message.hasPrefix("semctl(SETVAL): value -1 is outside 0...") == true)
    #expect(try lock.value == 0)
  }
}
