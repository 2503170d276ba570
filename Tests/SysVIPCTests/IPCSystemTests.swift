import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The entry for `kind` `id` in a fresh listing, if any.
func listed(_ kind: IPCObjectKind, _ id: Int32) throws -> IPCObjectInfo? {
  try IPCSystem.objects().first { $0.kind == kind && $0.id == id }
}

/// The first number of each whitespace-separated field of a /proc/sys/kernel file.
func procKernelValues(_ name: String) throws -> [UInt64] {
  try String(contentsOfFile: "/proc/sys/kernel/\(name)", encoding: .utf8)
    .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
    .map { try #require(UInt64($0), "\(name): \($0)") }
}

/// A /proc value as `IPCLimits` reports it: clamped to `Int.max`.
func clamped(_ value: UInt64) -> Int { Int(clamping: value) }

@Suite("IPCSystem: listing objects and reading limits")
struct IPCSystemTests {
  @Test func listsASemaphoreWithItsAttributes() throws {
    let before = Date().addingTimeInterval(-2)
    let semaphore = try makeSemaphore(initialValue: 1, mode: 0o640)
    defer { try? semaphore.remove() }

    let info = try #require(try listed(.semaphore, semaphore.id), "the new semaphore is listed")
    #expect(info.key == semaphore.key)
    #expect(info.mode == 0o640)
    #expect(info.uid == geteuid())
    #expect(info.gid == getegid())
    #expect(info.cuid == geteuid())
    #expect(info.cgid == getegid())
    #expect(info.semaphoreCount == 1)
    #expect(info.lastOperationTime == nil, "no semop yet")
    let changed = try #require(info.lastChangeTime)
    #expect(changed >= before && changed <= Date().addingTimeInterval(2))
    // The other kinds' fields stay empty.
    #expect(info.size == nil && info.attachCount == nil && info.creatorPID == nil)
    #expect(info.messageCount == nil && info.messageBytes == nil && info.lastSendPID == nil)
    #expect(!info.isMarkedForRemoval)

    try semaphore.acquire()
    let after = try #require(try listed(.semaphore, semaphore.id))
    #expect(after.lastOperationTime != nil, "semop sets sem_otime")
  }

  @Test func listsSharedMemoryWithItsAttachments() async throws {
    let memory = try SharedMemory(key: nil, flags: .createExclusive, mode: 0o600, size: 1000)
    defer { try? memory.remove() }
    let info = try #require(try listed(.sharedMemory, memory.id))
    #expect(info.key == memory.key)
    #expect(info.size == 1000)
    #expect(info.attachCount == 1, "this process is attached")
    #expect(info.creatorPID == getpid())
    #expect(info.lastPID == getpid())
    #expect(info.lastAttachTime != nil && info.lastDetachTime == nil)
    #expect(info.semaphoreCount == nil && info.messageCount == nil)
    #expect(!info.isMarkedForRemoval)

    // A second process attaches: the listing counts it and names it as the last.
    let helper = try HelperProcess(["shm-attach", String(memory.id), "--hold"])
    do {
      try await helper.waitForLine("holding", "yes")
    } catch {
      await helper.terminate()
      throw error
    }
    let held = try listed(.sharedMemory, memory.id)
    await helper.terminate()
    #expect(held?.attachCount == 2)
    #expect(
      held?.lastPID == helper.pid,
      "last attach or detach by \(processDescription(held?.lastPID))")

    // Removed while attached: listed as marked for removal, with the private key, until the
    // last detach.
    try memory.remove()
    let removed = try #require(try listed(.sharedMemory, memory.id))
    #expect(removed.isMarkedForRemoval)
    #expect(removed.key == .private)
    try memory.detach()
    #expect(try listed(.sharedMemory, memory.id) == nil)
  }

  @Test func listsAMessageQueueWithItsMessages() throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive, mode: 0o620)
    defer { try? queue.remove() }
    try queue.send(Array("hello".utf8), type: 3)
    try queue.send(Array("world!".utf8), type: 4)
    let info = try #require(try listed(.messageQueue, queue.id))
    #expect(info.key == queue.key)
    #expect(info.mode == 0o620)
    #expect(info.messageCount == 2)
    #expect(info.messageBytes == 11)
    #expect(info.maxQueueBytes == (try queue.maxSize))
    #expect(info.lastSendPID == getpid())
    #expect(info.lastReceivePID == 0)
    #expect(info.lastSendTime != nil && info.lastReceiveTime == nil)
    #expect(info.size == nil && info.semaphoreCount == nil)

    _ = try queue.receive()
    let after = try #require(try listed(.messageQueue, queue.id))
    #expect(after.messageCount == 1 && after.messageBytes == 6)
    #expect(after.lastReceivePID == getpid() && after.lastReceiveTime != nil)
  }

  @Test func listsASemaphoreSetWithItsCount() throws {
    let set = try SemaphoreSet(key: nil, count: 5, flags: .createExclusive)
    defer { try? set.remove() }
    #expect(try listed(.semaphore, set.id)?.semaphoreCount == 5)
  }

  @Test func everyKindIsListedInKindOrder() throws {
    // Kind by kind, in IPCObjectKind.allCases order: semaphores, shared memory, queues.
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 64)
    defer { try? memory.remove() }
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let all = try IPCSystem.objects()
    #expect(all.contains { $0.kind == .semaphore && $0.id == semaphore.id })
    #expect(all.contains { $0.kind == .sharedMemory && $0.id == memory.id })
    #expect(all.contains { $0.kind == .messageQueue && $0.id == queue.id })
    let kinds = all.map(\.kind)
    #expect(
      kinds
        == kinds.sorted {
          IPCObjectKind.allCases.firstIndex(of: $0)! < IPCObjectKind.allCases.firstIndex(of: $1)!
        })
  }

  @Test func objectByIDMatchesTheListing() throws {
    let semaphore = try makeSemaphore(mode: 0o600)
    defer { try? semaphore.remove() }
    let listedInfo = try #require(try listed(.semaphore, semaphore.id))
    let direct = try IPCSystem.object(.semaphore, id: semaphore.id)
    #expect(direct == listedInfo)
  }

  @Test func removedObjectsAreNotListed() throws {
    let semaphore = try makeSemaphore()
    let id = semaphore.id
    #expect(try listed(.semaphore, id) != nil)
    try semaphore.remove()
    #expect(try listed(.semaphore, id) == nil)
    let error = expectIPCError(.existential) { try IPCSystem.object(.semaphore, id: id) }
    #expect(error?.message.contains("semaphore \(id)") == true, "\(String(describing: error))")
  }

  @Test func objectsOfOneKindHoldOnlyThatKind() throws {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let semaphores = try IPCSystem.objects(of: .semaphore)
    #expect(semaphores.contains { $0.id == semaphore.id })
    #expect(semaphores.allSatisfy { $0.kind == .semaphore })
    for kind in [IPCObjectKind.sharedMemory, .messageQueue] {
      #expect(try IPCSystem.objects(of: kind).allSatisfy { $0.kind == kind })
    }
    // The whole list is the three kinds' lists together (objects of other tests may come and
    // go meanwhile, so only ours is compared).
    #expect(
      try IPCSystem.objects().filter { $0.kind == .semaphore }.contains { $0.id == semaphore.id })
  }

  @Test func manySemaphoresAreAllListed() throws {
    var created: [SysVIPC.Semaphore] = []
    defer { for s in created { try? s.remove() } }
    for _ in 0..<20 { created.append(try makeSemaphore()) }
    let ids = Set(try IPCSystem.objects(of: .semaphore).map(\.id))
    #expect(Set(created.map(\.id)).isSubset(of: ids))
  }

  @Test(.enabled(if: isRoot, "needs root to create an object that nobody may not read"))
  func listingShowsObjectsTheCallerMayNotRead() async throws {
    let semaphore = try makeSemaphore(mode: 0o600)
    defer { try? semaphore.remove() }
    let list = try await HelperProcess.run(
      ["--as-nobody", "sys-list", "semaphore", String(semaphore.id)])
    #expect(list.value("privileges") == "dropped", "\(list.output)")
    #expect(list.ok, "\(list.output)")
    #expect(list.value("found") == "yes", "SEM_STAT_ANY lists unreadable objects, as ipcs does")
    #expect(list.value("key") == String(semaphore.key.rawValue))
    #expect(list.value("mode") == "600")
    #expect(list.value("uid") == "0")

    // Reading that one object by id needs read permission.
    let direct = try await HelperProcess.run(
      ["--as-nobody", "sys-object", "semaphore", String(semaphore.id)])
    #expect(direct.value("privileges") == "dropped", "\(direct.output)")
    #expect(direct.errorKind == "permissions", "\(direct.output)")
  }

  @Test func limitsMatchProcSysKernel() throws {
    let limits = try IPCSystem.limits()
    #expect(limits.msgmax == clamped(try procKernelValues("msgmax")[0]))
    #expect(limits.msgmnb == clamped(try procKernelValues("msgmnb")[0]))
    #expect(limits.msgmni == clamped(try procKernelValues("msgmni")[0]))
    // /proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI.
    let sem = try procKernelValues("sem")
    try #require(sem.count == 4)
    #expect(limits.semmsl == clamped(sem[0]))
    #expect(limits.semmns == clamped(sem[1]))
    #expect(limits.semopm == clamped(sem[2]))
    #expect(limits.semmni == clamped(sem[3]))
    #expect(limits.shmmax == clamped(try procKernelValues("shmmax")[0]))
    #expect(limits.shmall == clamped(try procKernelValues("shmall")[0]))
    #expect(limits.shmmni == clamped(try procKernelValues("shmmni")[0]))
    // SEMVMX is a constant of the Linux kernel, not in /proc.
    #expect(limits.semvmx == 32767)
    #expect(limits.semvmx == SysVIPC.Semaphore.maxValue)
    #expect(limits.pageSize == Int(sysconf(Int32(_SC_PAGESIZE))))
    #expect(limits.pageSize > 0 && limits.pageSize.nonzeroBitCount == 1)
  }

  @Test func limitsListEveryName() throws {
    let names = try IPCSystem.limits().all.map(\.key)
    #expect(
      names == [
        "msgmax", "msgmnb", "msgmni", "semmsl", "semmns", "semopm", "semmni", "semvmx",
        "shmmax", "shmall", "shmmni", "pageSize",
      ])
  }

  @Test func limitsFromAnotherProcessAgree() async throws {
    let outcome = try await HelperProcess.run(["sys-limits"])
    #expect(outcome.ok, "\(outcome.output)")
    let limits = try IPCSystem.limits()
    for (name, value) in limits.all {
      #expect(outcome.value(name) == value.map(String.init), "\(name)")
    }
  }
}
