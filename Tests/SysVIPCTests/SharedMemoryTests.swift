import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// `length` bytes of address space of the caller's own (`mmap` of `PROT_NONE`), for attaching
/// at a fixed address. Never unmapped: once a segment attached there is detached, the kernel
/// may place another test's attachment in the hole (tests run in parallel in this process), and
/// a `munmap` of the whole range would pull that live mapping from under it (a SIGSEGV seen in
/// a full run). What is left of the reservation is a few pages of address space until the test
/// process ends.
func reserveAddressRange(_ length: Int) throws -> UnsafeMutableRawPointer {
  let reserved = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
  return try #require(
    reserved.flatMap { $0 == UnsafeMutableRawPointer(bitPattern: -1) ? nil : $0 })
}

/// A new segment at a random key, removed by the caller's `defer`.
func makeSharedMemory(
  size: Int? = nil, mode: IPCPermissions = 0o600, flags: IPCFlags = .createExclusive,
  initCharacter: UInt8 = 0x20
) throws -> SharedMemory {
  try SharedMemory(key: nil, flags: flags, mode: mode, size: size, initCharacter: initCharacter)
}

/// A key that names no segment now: drawn by creating a segment and removing it.
func unusedSharedMemoryKey() throws -> IPCKey {
  let probe = try makeSharedMemory(size: 1)
  try probe.remove()
  try probe.detach()
  return probe.key
}

/// How many mappings of the segment with this key this process has (`/proc/self/maps` names
/// them `/SYSV<key in hex>`).
func sharedMemoryMappings(key: IPCKey) throws -> Int {
  // procfs files report size 0: read to the end rather than by size.
  let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps"))
  defer { try? handle.close() }
  let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
  let name = "/SYSV" + String(key.description.dropFirst(2))
  return maps.split(separator: "\n").filter { $0.contains(name) }.count
}

@Suite("SharedMemory: the reference's behaviour")
struct SharedMemoryTests {
  @Test func createExclusiveThenOpenThenClash() throws {
    let created = try makeSharedMemory()
    defer { try? created.remove() }
    #expect(created.key != .private)
    #expect(created.id >= 0)
    #expect(created.size == SharedMemory.pageSize, "size nil with .createExclusive: one page")
    #expect(created.isAttached, "attached on creation")
    #expect(created.address != nil)
    #expect(!created.isReadOnly)

    let opened = try SharedMemory(key: created.key)
    #expect(opened.id == created.id)
    #expect(opened.size == created.size, "opened with size 0, size is the segment's")
    #expect(opened.isAttached)
    #expect(try created.numberAttached == 2)

    expectIPCError(.existential) {
      try SharedMemory(key: created.key, flags: .createExclusive, size: 10)
    }
    try created.write("kept")
    let orCreated = try SharedMemory(key: created.key, flags: .create, initCharacter: 0x41)
    #expect(orCreated.id == created.id)
    #expect(try created.read(count: 5) == Array("kept ".utf8), "opening must not refill")
  }

  @Test func openMissingKeyIsExistential() throws {
    let key = try unusedSharedMemoryKey()
    let error = expectIPCError(.existential) { try SharedMemory(key: key) }
    #expect(error?.message.contains("shmget") == true)
  }

  @Test func defaultInitCharacterIsSpace() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    let bytes = try memory.read()
    #expect(bytes.count == SharedMemory.pageSize)
    #expect(bytes.allSatisfy { $0 == 0x20 })
  }

  @Test(arguments: [0x00, 0x41, 0xFF] as [UInt8])
  func customInitCharacter(_ character: UInt8) throws {
    let memory = try makeSharedMemory(size: 100, initCharacter: character)
    defer { try? memory.remove() }
    #expect(memory.size == 100, "the segment's size, not the page's")
    let bytes = try memory.read()
    #expect(bytes.count == 100)
    #expect(bytes.allSatisfy { $0 == character })
  }

  @Test func initCharacterFillsOnlyASegmentThisCallCreated() throws {
    let key = try unusedSharedMemoryKey()
    let first = try SharedMemory(key: key, flags: .create, size: 64, initCharacter: 0x78)
    defer { try? first.remove() }
    #expect(try first.read() == [UInt8](repeating: 0x78, count: 64), ".create that created fills")
    try first.write("abc")
    let second = try SharedMemory(key: key, flags: .create, size: 64, initCharacter: 0x79)
    #expect(second.id == first.id)
    let third = try SharedMemory(key: key, initCharacter: 0x7A)
    #expect(third.id == first.id)
    #expect(try first.read(count: 5) == Array("abcxx".utf8))
  }

  @Test func modeWithoutWriteAttachesReadOnlyAndDoesNotFill() throws {
    let memory = try makeSharedMemory(size: 32, mode: 0o400, initCharacter: 0x41)
    defer { try? memory.remove() }
    #expect(memory.isAttached)
    #expect(memory.isReadOnly)
    #expect(try memory.mode == 0o400)
    #expect(try memory.read() == [UInt8](repeating: 0, count: 32), "read-only: not filled")
    expectIPCError(.permissions) { try memory.write("x") }
    expectIPCError(.permissions) { try memory.withUnsafeMutableBytes { $0[0] = 1 } }
    #expect(try memory.read(count: 1) == [0])
  }

  @Test func privateKey() throws {
    let a = try SharedMemory(key: .private, flags: .create, size: 10)
    defer { try? a.remove() }
    let b = try SharedMemory(key: .private, flags: .create, size: 10)
    defer { try? b.remove() }
    #expect(a.id != b.id)
    #expect(a.key == .private)
    #expect(a.size == 10)
    expectIPCError(.invalidArgument) { try SharedMemory(key: .private, size: 10) }
  }

  @Test func detachThenAttach() throws {
    let memory = try makeSharedMemory(size: 16)
    defer { try? memory.remove() }
    try memory.write("persist")
    try memory.detach()
    #expect(!memory.isAttached)
    #expect(memory.address == nil)
    #expect(!memory.isReadOnly)
    #expect(try memory.numberAttached == 0)
    expectIPCError(.notAttached) { try memory.read() }
    expectIPCError(.notAttached) { try memory.write("x") }
    expectIPCError(.notAttached) { try memory.detach() }
    try memory.attach()
    #expect(memory.isAttached)
    #expect(memory.address != nil)
    #expect(try memory.numberAttached == 1)
    #expect(try memory.read(count: 7) == Array("persist".utf8))
  }

  @Test func readOnlyAttachRefusesWrites() throws {
    let memory = try makeSharedMemory(size: 16, initCharacter: 0x2E)
    defer { try? memory.remove() }
    try memory.attach(flags: .readOnly)
    #expect(memory.isReadOnly)
    #expect(try memory.numberAttached == 1, "re-attaching replaced the mapping")
    let error = expectIPCError(.permissions) { try memory.write("x") }
    #expect(error?.message.contains("read-only") == true)
    #expect(try memory.read() == [UInt8](repeating: 0x2E, count: 16))
    try memory.attach()
    #expect(!memory.isReadOnly)
    try memory.write("x")
    #expect(try memory.read(count: 2) == Array("x.".utf8))
  }

  @Test func attachingWhileAttachedDoesNotLeakAMapping() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    #expect(try sharedMemoryMappings(key: memory.key) == 1)
    for _ in 0..<5 { try memory.attach() }
    try memory.attach(flags: .readOnly)
    #expect(try memory.numberAttached == 1)
    #expect(try sharedMemoryMappings(key: memory.key) == 1)
    try memory.detach()
    #expect(try memory.numberAttached == 0)
    #expect(try sharedMemoryMappings(key: memory.key) == 0)
  }

  @Test func deinitDetaches() throws {
    let keeper = try makeSharedMemory()
    defer { try? keeper.remove() }
    var other: SharedMemory? = try SharedMemory.attach(id: keeper.id)
    #expect(other?.key == keeper.key)
    #expect(other?.size == keeper.size)
    #expect(try keeper.numberAttached == 2)
    other = nil
    #expect(other == nil)
    #expect(try keeper.numberAttached == 1)
    #expect(try sharedMemoryMappings(key: keeper.key) == 1)
  }

  @Test func attachByIDReadOnlyAndAtAnAddress() throws {
    let memory = try makeSharedMemory(initCharacter: 0x61)
    defer { try? memory.remove() }
    let viewer = try SharedMemory.attach(id: memory.id, flags: .readOnly)
    #expect(viewer.isReadOnly)
    #expect(try viewer.read(count: 3) == Array("aaa".utf8))
    expectIPCError(.permissions) { try viewer.write("b") }

    // A reserved region to attach into: SHM_REMAP replaces it, SHM_RND rounds down to it.
    let length = memory.size * 2
    let region = try reserveAddressRange(length)
    expectIPCError(.invalidArgument) {
      try SharedMemory.attach(id: memory.id, address: region)  // in use, no .remap
    }
    #if os(Linux)
      expectIPCError(.invalidArgument) {
        try SharedMemory.attach(id: memory.id, address: region + 1, flags: .remap)  // unaligned
      }
      let placed = try SharedMemory.attach(
        id: memory.id, address: region + 1, flags: [.remap, .roundAddress])
      #expect(placed.address == UnsafeRawPointer(region))
      try placed.write("B")
      #expect(try memory.read(count: 2) == Array("Ba".utf8))
      try placed.detach()
      #expect(try memory.numberAttached == 2)
    #endif
  }

  @Test func readAndWriteWithOffsetsAndClipping() throws {
    let memory = try makeSharedMemory(size: 64, initCharacter: 0x2D)
    defer { try? memory.remove() }
    try memory.write("hello", offset: 10)
    #expect(try memory.read(count: 5, offset: 10) == Array("hello".utf8))
    try memory.write([1, 2, 3] as [UInt8], offset: 20)
    try memory.write(repeatElement(0x7A, count: 4), offset: 30)  // not contiguous
    try memory.write((0..<3).lazy.map { UInt8(0x30 + $0) }, offset: 40)
    #expect(try memory.read(count: 3, offset: 20) == [1, 2, 3])
    #expect(try memory.read(count: 4, offset: 30) == Array("zzzz".utf8))
    #expect(try memory.read(count: 3, offset: 40) == Array("012".utf8))
    #expect(try memory.read(count: 100, offset: 61) == Array("---".utf8), "clipped at the end")
    #expect(try memory.read(offset: 63) == Array("-".utf8), "count 0: to the end")
    #expect(try memory.read().count == 64)
    try memory.write("end", offset: 61)
    #expect(try memory.read(offset: 61) == Array("end".utf8))
    try memory.write("", offset: 64)  // nothing, at the end: allowed, as in Python
  }

  @Test func pastTheEndIsRefusedAndWritesNothing() throws {
    let memory = try makeSharedMemory(size: 16, initCharacter: 0x2E)
    defer { try? memory.remove() }
    let error = expectIPCError(.invalidArgument) { try memory.write("abcde", offset: 12) }
    #expect(error?.message.contains("pass the end") == true)
    expectIPCError(.invalidArgument) { try memory.write(repeatElement(0x41, count: 17)) }
    expectIPCError(.invalidArgument) { try memory.write("a", offset: 16) }
    expectIPCError(.invalidArgument) { try memory.write("", offset: 17) }
    expectIPCError(.invalidArgument) { try memory.write("a", offset: Int.max) }
    expectIPCError(.invalidArgument) { try memory.read(offset: 16) }
    expectIPCError(.invalidArgument) { try memory.read(count: 1, offset: Int.max) }
    #expect(try memory.read() == [UInt8](repeating: 0x2E, count: 16), "nothing written")
  }

  @Test func nulBytesAndUTF8RoundTrip() throws {
    let memory = try makeSharedMemory(size: 128, initCharacter: 0)
    defer { try? memory.remove() }
    let withNULs: [UInt8] = [0x61, 0, 0x62, 0, 0, 0x63]
    try memory.write(withNULs, offset: 1)
    #expect(try memory.read(count: 6, offset: 1) == withNULs)
    let text = "héllo, 世界 🎉\u{0}after NUL"
    try memory.write(text, offset: 20)
    let back = try memory.read(count: text.utf8.count, offset: 20)
    #expect(String(decoding: back, as: UTF8.self) == text)
  }

  @Test func removeKeepsTheSegmentUntilTheLastDetach() throws {
    let memory = try makeSharedMemory(size: 100)
    defer { try? memory.remove() }
    try memory.write("alive")
    try memory.remove()
    let status = try memory.status()
    #expect(status.isMarkedForRemoval)
    #expect(status.numberAttached == 1)
    #expect(status.key == .private, "the kernel frees the key at once")
    #expect(status.size == 100)
    #expect(try memory.mode == 0o600)
    #expect(try memory.uid == geteuid())
    #expect(try memory.creatorPID == getpid())
    #expect(try memory.read(count: 5) == Array("alive".utf8))
    expectIPCError(.existential) { try SharedMemory(key: memory.key) }
    try memory.detach()
    expectIPCError(.existential) { try memory.status() }
    expectIPCError(.existential) { try memory.numberAttached }
    expectIPCError(.existential) { try memory.attach() }
    expectIPCError(.existential) { try SharedMemory.remove(id: memory.id) }
  }

  @Test func removeByID() throws {
    let memory = try makeSharedMemory()
    try memory.detach()
    try SharedMemory.remove(id: memory.id)
    expectIPCError(.existential) { try SharedMemory.attach(id: memory.id) }
    expectIPCError(.existential) { try SharedMemory(key: memory.key) }
    expectIPCError(.existential) { try memory.remove() }
  }

  @Test func attributes() throws {
    let before = Date()
    let memory = try makeSharedMemory(size: 1000, mode: 0o640)
    defer { try? memory.remove() }
    #expect(memory.size == 1000)
    #expect(try memory.uid == geteuid())
    #expect(try memory.gid == getegid())
    #expect(try memory.cuid == geteuid())
    #expect(try memory.cgid == getegid())
    #expect(try memory.mode == 0o640)
    #expect(try memory.creatorPID == getpid())
    #expect(try memory.lastPID == getpid())
    #expect(try memory.numberAttached == 1)
    let attached = try #require(try memory.lastAttachTime)
    #expect(abs(attached.timeIntervalSince(before)) < 5)
    #expect(try memory.lastDetachTime == nil)
    let changed = try #require(try memory.lastChangeTime)
    #expect(abs(changed.timeIntervalSince(before)) < 5)

    try memory.setMode(0o600)
    #expect(try memory.mode == 0o600)
    try memory.setOwner(uid: geteuid(), gid: getegid())
    expectIPCError(.invalidArgument) { try memory.setMode(0o4000) }
    expectIPCError(.invalidArgument) { try memory.setOwner(uid: UInt32.max) }

    let status = try memory.status()
    #expect(status.key == memory.key)
    #expect(status.id == memory.id)
    #expect(status.size == 1000)
    #expect(status.mode == 0o600)
    #expect(status.uid == geteuid())
    #expect(status.gid == getegid())
    #expect(status.cuid == geteuid())
    #expect(status.cgid == getegid())
    #expect(status.creatorPID == getpid())
    #expect(status.lastPID == getpid())
    #expect(status.numberAttached == 1)
    #expect(!status.isMarkedForRemoval)
    #expect(status.lastAttachTime == attached)
    #expect(status.lastDetachTime == nil)
    #expect(status.lastChangeTime != nil)

    let page = SharedMemory.pageSize
    #expect(page == Int(sysconf(Int32(_SC_PAGESIZE))))
    #expect(page >= 4096 && page & (page - 1) == 0)
  }

  @Test func timesChangeAfterAttachDetachAndSetOwner() async throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    let created = try memory.status()
    let attached = try #require(created.lastAttachTime)
    let changed = try #require(created.lastChangeTime)
    #expect(created.lastDetachTime == nil)
    // Kernel times have a resolution of one second: repeat until the clock has moved on.
    try await waitUntil("attach, detach and change times advance", timeout: .seconds(30)) {
      try memory.detach()
      try memory.attach()
      try memory.setOwner(uid: geteuid(), gid: getegid())
      let now = try memory.status()
      return now.lastAttachTime! > attached && now.lastChangeTime! > changed
        && now.lastDetachTime.map { $0 > attached } == true
    }
    let now = try memory.status()
    #expect(abs(now.lastAttachTime!.timeIntervalSinceNow) < 5)
    #expect(abs(now.lastDetachTime!.timeIntervalSinceNow) < 5)
    #expect(abs(now.lastChangeTime!.timeIntervalSinceNow) < 5)
    #expect(now.lastPID == getpid())
  }

  @Test func oneGiBSegmentAtItsFarEnd() throws {
    let size = 1 << 30
    #if os(Linux)
      let flags: IPCFlags = [.createExclusive, .noReserve]
    #else
      let flags: IPCFlags = .createExclusive
    #endif
    let memory = try makeSharedMemory(size: size, flags: flags, initCharacter: 0)
    defer { try? memory.remove() }
    #expect(memory.size == size)
    try memory.write("far end", offset: size - 7)
    #expect(try memory.read(count: 7, offset: size - 7) == Array("far end".utf8))
    #expect(try memory.read(count: 100, offset: size - 3) == Array("end".utf8))
    #expect(try memory.read(offset: size - 1) == Array("d".utf8))
    expectIPCError(.invalidArgument) { try memory.write("12345678", offset: size - 7) }
    expectIPCError(.invalidArgument) { try memory.read(offset: size) }
    let last = try memory.withBytes { (span) throws(IPCError) -> UInt8 in
      #expect(span.byteCount == size)
      return span.unsafeLoad(fromByteOffset: size - 1, as: UInt8.self)
    }
    #expect(last == UInt8(ascii: "d"))
    try memory.withUnsafeMutableBytes { $0[size - 8] = UInt8(ascii: ">") }
    #expect(try memory.read(count: 2, offset: size - 8) == Array(">f".utf8))
    #expect(try memory.read(count: 1, offset: size / 2) == [0])
  }

  @Test func errorMessagesNameOperationAndObject() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    try memory.detach()
    let notAttached = expectIPCError(.notAttached) { try memory.read() }
    #expect(notAttached?.message.contains("shared memory \(memory.id)") == true)
    try memory.remove()
    let gone = expectIPCError(.existential) { try memory.attach() }
    #expect(gone?.message.contains("shmat on shared memory \(memory.id)") == true)
    #expect(gone?.errno != nil)
  }
}
