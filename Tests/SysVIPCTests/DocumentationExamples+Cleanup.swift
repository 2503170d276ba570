// The examples of the articles "Cleaning Up After Crashes" (SysVIPC.docc/CleaningUpAfterCrashes.md)
// and "Containers and Namespaces" (SysVIPC.docc/ContainersAndNamespaces.md), compiled and run.
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// CleaningUpAfterCrashes.md: a crash-safe lock.
/// Opens the lock at `key` for crash-safe use: whatever this process takes, the kernel gives
/// back when it dies.
func openCrashSafeLock(at key: IPCKey) throws(IPCError) -> SysVIPC.Semaphore {
  var lock = try SysVIPC.Semaphore.openOrCreate(key: key, initialValue: 1)
  lock.undo = true
  return lock
}

// CleaningUpAfterCrashes.md: stale objects, with the reason.
/// The objects of `kind` that look abandoned, with the reason for each.
func abandoned(_ kind: IPCObjectKind, olderThan age: Duration) throws(IPCError) -> [String] {
  try IPCSystem.staleObjects(olderThan: age, of: [kind]).map { object in
    let answer = IPCSystem.staleness(of: object, olderThan: age)
    return "\(object.kind.name) \(object.id): \(answer.reason)"
  }
}

// CleaningUpAfterCrashes.md: clean up at start-up.
/// Removes what an earlier, crashed run left at `key`: the stale objects of any kind there.
/// Returns how many it removed.
func removeLeftovers(at key: IPCKey, olderThan age: Duration) throws(IPCError) -> Int {
  var removed = 0
  for object in try IPCSystem.staleObjects(olderThan: age) where object.key == key {
    do {
      try IPCSystem.remove(object)
      removed += 1
    } catch  where error.kind == .existential {
      // Another process removed it first.
    }
  }
  return removed
}

// ContainersAndNamespaces.md: limits and usage of this namespace.
/// Whether most of this namespace's semaphore sets are in use: a sign of leaked objects.
func semaphoreSetsNearlyExhausted() throws(IPCError) -> Bool {
  let limits = try IPCSystem.limits()
  let usage = try IPCSystem.usage()
  guard let most = limits.semmni, most > 0 else { return false }
  return usage.semaphoreSets * 10 >= most * 9
}

@Suite("Documentation examples: cleaning up after crashes, containers and namespaces")
struct DocumentationExamplesCleanup {
  /// The lock's holder is killed while holding it; the kernel gives the unit back.
  @Test func aCrashSafeLockComesBackWhenItsHolderIsKilled() async throws {
    let key = try unusedKeyForExamples()
    let lock = try openCrashSafeLock(at: key)
    defer { try? lock.remove() }
    #expect(lock.undo)
    let holder = try HelperProcess(["sem-acquire", String(lock.id), "--undo", "--hold"])
    try await holder.waitForLine("acquired", "yes")
    #expect(try lock.value == 0)
    await holder.terminate()
    #expect(try lock.value == 1, "the kernel undid the killed holder's acquire")
  }

  /// A killed program's leftovers are found and removed; a live one's are kept.
  @Test func startUpCleanUpRemovesOnlyAKilledRunsObjects() async throws {
    let dead = try await StaleUser()
    defer { dead.removeAll() }
    let live = try await StaleUser()
    defer { live.removeAll() }
    defer { Task { await live.process.terminate() } }
    await dead.process.terminate()

    #expect(try removeLeftovers(at: dead.key, olderThan: .seconds(3600)) == 0, "too young")
    // The segment's last detach is the kill itself: wait until all three are a second old.
    try await waitUntil("the killed run's objects look abandoned") {
      try IPCSystem.staleObjects(olderThan: .seconds(1)).filter { $0.key == dead.key }.count == 3
    }
    let semaphoreID = try #require(dead.ids[.semaphore])
    #expect(
      try abandoned(.semaphore, olderThan: .seconds(1)).contains {
        $0.hasPrefix("semaphore \(semaphoreID): every process that used it is gone")
      })
    #expect(try removeLeftovers(at: dead.key, olderThan: .seconds(1)) == 3)
    #expect(try dead.objects().isEmpty)
    #expect(try removeLeftovers(at: live.key, olderThan: .zero) == 0)
    #expect(try live.objects().count == 3)
  }

  @Test func usageAgainstTheLimits() throws {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? set.remove() }
    let usage = try IPCSystem.usage()
    #expect(usage.semaphoreSets >= 1 && usage.semaphores >= 2, "this test's set is counted")
    let most = try #require(try IPCSystem.limits().semmni)
    // Other programs' sets change the count only by a few between the two reads; the answer
    // flips only within a few sets of 90%, which a test machine is far from.
    #expect(try semaphoreSetsNearlyExhausted() == (usage.semaphoreSets * 10 >= most * 9))
  }
}
