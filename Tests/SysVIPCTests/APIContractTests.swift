import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Every name and shape of ../shared/API.md, used as a user would write it: a renamed or
/// reshaped public API fails to compile here before it breaks anyone else.
@Suite("API contract (API.md)")
struct APIContractTests {
  @Test func commonTypes() throws {
    let key: IPCKey = 42
    #expect(key.rawValue == 42)
    #expect(IPCKey(rawValue: 7).rawValue == 7)
    #expect(IPCKey.private.rawValue == 0)
    #expect(IPCKey.min.rawValue == Int32.min && IPCKey.max.rawValue == Int32.max)
    #if os(Linux)
      let flags: [IPCFlags] = [[], .create, .exclusive, .createExclusive, .hugePages, .noReserve]
      #expect(flags.count == 6)
    #endif
    let mode: IPCPermissions = 0o600
    #expect(mode.rawValue == 0o600)
    let error = IPCError(.busy, "example")
    let kinds: [IPCError.Kind] = [
      .existential, .permissions, .busy, .notAttached, .invalidArgument, .outOfRange, .system,
      .internal,
    ]
    #expect(kinds.contains(error.kind))
    #expect(error.errno == nil)
    #expect(error.description.contains("example"))
    let _: any (Error & Hashable & Sendable & CustomStringConvertible) = error
    expectIPCError(.existential) { try IPCKey(path: "/no/such/path/here", projectID: 1) }
    _ = try IPCKey(path: "/", projectID: 1)
  }

  @Test func semaphore() throws {
    var semaphore = try SysVIPC.Semaphore(
      key: nil, flags: .createExclusive, mode: 0o600, initialValue: 1)
    defer { try? semaphore.remove() }
    let _: IPCKey = semaphore.key
    let _: Int32 = semaphore.id
    semaphore.block = true
    semaphore.undo = false
    let byID = try SysVIPC.Semaphore(id: semaphore.id)
    try byID.acquire(timeout: nil, delta: 1)
    try byID.release(delta: 1)
    try byID.P(timeout: .seconds(1), delta: 1)
    try byID.V(delta: 1)
    try byID.acquire()
    try byID.waitForZero(timeout: .zero)
    try byID.Z(timeout: .zero)
    try byID.setValue(1)
    let value: Int = try byID.value
    #expect(value == 1)
    let result = try byID.withAcquired(timeout: .seconds(1), delta: 1) { 5 }
    #expect(result == 5)
    let _: IPCPermissions = try byID.mode
    let _: uid_t = try byID.uid
    let _: gid_t = try byID.gid
    let _: uid_t = try byID.cuid
    let _: gid_t = try byID.cgid
    let _: pid_t = try byID.lastPID
    let _: Int = try byID.waitingForNonzero
    let _: Int = try byID.waitingForZero
    let _: Date? = try byID.lastOperationTime
    let _: Date? = try byID.lastChangeTime
    try byID.setMode(0o600)
    try byID.setOwner(uid: geteuid(), gid: getegid())
    let _: SysVIPC.Semaphore.Status = try byID.status()
    let _: Int = SysVIPC.Semaphore.maxValue
    let _: Bool = SysVIPC.Semaphore.timeoutSupported
    let shared = try SysVIPC.Semaphore.openOrCreate(
      key: semaphore.key, initialValue: 0, mode: 0o600, timeout: .seconds(1))
    #expect(shared.id == semaphore.id)
  }

  @Test func semaphoreAsyncForms() async throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? semaphore.remove() }
    try await semaphore.acquire(timeout: .seconds(1), delta: 1)
    try semaphore.release()
    try await semaphore.acquire()
    try await semaphore.waitForZero(timeout: .seconds(1))
    try await semaphore.waitForZero()
    try SysVIPC.Semaphore.remove(id: semaphore.id)
  }

  @Test func sharedMemory() throws {
    let memory = try SharedMemory(
      key: nil, flags: .createExclusive, mode: 0o600, size: nil, initCharacter: 0x20)
    defer { try? memory.remove() }
    #expect(memory.size == SharedMemory.pageSize)
    let other = try SharedMemory.attach(id: memory.id, address: nil, flags: [])
    try other.detach()
    try other.attach(address: nil, flags: [.readOnly])
    #if os(Linux)
      let attachFlags: [SharedMemory.AttachFlags] = [.readOnly, .roundAddress, .remap]
    #else
      let attachFlags: [SharedMemory.AttachFlags] = [.readOnly, .roundAddress]
    #endif
    #expect(Set(attachFlags.map(\.rawValue)).count == attachFlags.count, "distinct flags")
    try memory.write([1, 2, 3], offset: 0)
    try memory.write("text", offset: 3)
    let bytes: [UInt8] = try memory.read(count: 7, offset: 0)
    #expect(bytes == [1, 2, 3] + Array("text".utf8))
    #expect(try memory.read().count == memory.size)
    try memory.withUnsafeBytes { #expect($0.count == memory.size) }
    try memory.withUnsafeMutableBytes { $0[0] = 9 }
    try memory.withBytes { span in #expect(span.byteCount == memory.size) }
    try memory.withMutableBytes { span in span.storeBytes(of: 8, toByteOffset: 1, as: UInt8.self) }
    #expect(try other.read(count: 2) == [9, 8])
    let _: IPCKey = memory.key
    let _: Int32 = memory.id
    let _: UnsafeRawPointer? = memory.address
    let _: Bool = memory.isAttached
    let _: Date? = try memory.lastAttachTime
    let _: Date? = try memory.lastDetachTime
    let _: Date? = try memory.lastChangeTime
    let _: pid_t = try memory.creatorPID
    let _: pid_t = try memory.lastPID
    let _: Int = try memory.numberAttached
    let _: IPCPermissions = try memory.mode
    let _: uid_t = try memory.uid
    let _: gid_t = try memory.gid
    let _: uid_t = try memory.cuid
    let _: gid_t = try memory.cgid
    try memory.setMode(0o600)
    try memory.setOwner(uid: geteuid(), gid: getegid())
    let _: SharedMemory.Status = try memory.status()
    let removable = try SharedMemory(key: nil, flags: .createExclusive)
    try SharedMemory.remove(id: removable.id)
  }

  @Test func messageQueue() throws {
    let queue = try MessageQueue(
      key: nil, flags: .createExclusive, mode: 0o600, maxMessageSize: 2048)
    defer { try? queue.remove() }
    let byID = try MessageQueue(id: queue.id)
    try byID.send([1, 2, 3], block: true, type: 1)
    try byID.send("hello", block: true, type: 2)
    try [UInt8]([4, 5]).withUnsafeBytes { try byID.send($0, block: false, type: 3) }
    let first: (message: [UInt8], type: Int) = try byID.receive(block: true, type: 0)
    #expect(first.message == [1, 2, 3] && first.type == 1)
    var storage = [UInt8](repeating: 0, count: 64)
    let second: (count: Int, type: Int) = try storage.withUnsafeMutableBytes {
      try byID.receive(into: $0, block: true, type: 2)
    }
    #expect(second.count == 5 && second.type == 2)
    #expect(try byID.receive(block: false, type: -5).type == 3)
    let _: IPCKey = queue.key
    let _: Int32 = queue.id
    let _: Int = try queue.maxSize
    try queue.setMaxSize(try queue.maxSize)
    let _: Date? = try queue.lastSendTime
    let _: Date? = try queue.lastReceiveTime
    let _: Date? = try queue.lastChangeTime
    let _: pid_t = try queue.lastSendPID
    let _: pid_t = try queue.lastReceivePID
    let _: Int = try queue.currentMessages
    let _: Int = try queue.currentBytes
    let _: IPCPermissions = try queue.mode
    let _: uid_t = try queue.uid
    let _: gid_t = try queue.gid
    let _: uid_t = try queue.cuid
    let _: gid_t = try queue.cgid
    try queue.setMode(0o600)
    try queue.setOwner(uid: geteuid(), gid: getegid())
    let _: MessageQueue.Status = try queue.status()
    let removable = try MessageQueue(key: nil, flags: .createExclusive)
    try MessageQueue.remove(id: removable.id)
  }

  @Test func messageQueueAsyncForms() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    try await queue.send([7], block: true, type: 1)
    try await queue.send("s", block: true, type: 1)
    let received = try await queue.receive(block: true, type: 0)
    #expect(received.message == [7])
    #expect(try await queue.receive().message == Array("s".utf8))
    try await queue.send([8])
    for try await (message, _) in queue.messages(type: 0) {
      #expect(message == [8])
      break
    }
  }

  @Test func semaphoreSet() throws {
    let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive, mode: 0o600)
    defer { try? set.remove() }
    let byID = try SemaphoreSet(id: set.id)
    #expect(byID.count == 3)
    try set.setValues([1, 2, 3])
    #expect(try set.values() == [1, 2, 3])
    try set.setValue(4, at: 0)
    #expect(try set.value(at: 0) == 4)
    let _: Int = try set.waitingForNonzero(at: 0)
    let _: Int = try set.waitingForZero(at: 0)
    let _: pid_t = try set.lastPID(at: 0)
    try set.apply(
      [SemaphoreSet.Operation(index: 0, delta: -1, nonBlocking: true, undo: false)],
      timeout: nil)
    try set.apply([SemaphoreSet.Operation(index: 1, delta: 1, nonBlocking: false, undo: true)])
    let _: SemaphoreSet.Status = try set.status()
    let shared = try SemaphoreSet.openOrCreate(
      key: set.key, count: 3, initialValues: [0, 0, 0], mode: 0o600, timeout: .seconds(1))
    #expect(shared.id == set.id)
  }

  @Test func semaphoreSetAsyncForm() async throws {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    defer { try? set.remove() }
    try await set.apply([SemaphoreSet.Operation(index: 1, delta: 1)], timeout: .seconds(1))
    #expect(try set.values() == [0, 1])
  }

  @Test func system() throws {
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
    defer { try? semaphore.remove() }
    let objects: [IPCObjectInfo] = try IPCSystem.objects()
    let mine = try #require(objects.first { $0.kind == .semaphore && $0.id == semaphore.id })
    let _: IPCKey = mine.key
    let _: IPCPermissions = mine.mode
    let _: uid_t = mine.uid
    let limits: IPCLimits = try IPCSystem.limits()
    let values: [Int?] = [
      limits.msgmax, limits.msgmnb, limits.msgmni, limits.semmsl, limits.semmns, limits.semopm,
      limits.semmni, limits.semvmx, limits.shmmax, limits.shmall, limits.shmmni,
    ]
    #expect(values.allSatisfy { $0 != nil })
    #expect(limits.pageSize == SharedMemory.pageSize)
  }
}
