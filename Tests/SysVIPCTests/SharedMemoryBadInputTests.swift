import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The kernel's largest segment (`/proc/sys/kernel/shmmax`), if readable.
var sharedMemoryMaximumSize: Int? {
  (try? String(contentsOfFile: "/proc/sys/kernel/shmmax", encoding: .utf8))
    .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    .map { Int(clamping: $0) }
}

/// Asserts that no segment exists at `key`.
func expectNoSharedMemory(
  at key: IPCKey, sourceLocation: SourceLocation = #_sourceLocation
) {
  expectIPCError(.existential, sourceLocation: sourceLocation) { try SharedMemory(key: key) }
}

@Suite("SharedMemory: bad input")
struct SharedMemoryBadInputTests {
  @Test func sizeZeroOnCreateLeavesNothing() throws {
    let key = try unusedSharedMemoryKey()
    let exclusive = expectIPCError(.invalidArgument) {
      try SharedMemory(key: key, flags: .createExclusive, size: 0)
    }
    #expect(exclusive?.message.contains("size 0") == true)
    #expect(exclusive?.errno == nil, "refused before any system call")
    // .create with size 0 (the default) opens an existing segment, but cannot create one.
    let create = expectIPCError(.invalidArgument) { try SharedMemory(key: key, flags: .create) }
    #expect(create?.message.contains("size 0") == true, "\(String(describing: create))")
    expectIPCError(.invalidArgument) { try SharedMemory(key: .private, flags: .create) }
    expectIPCError(.invalidArgument) {
      try SharedMemory(key: nil, flags: .createExclusive, size: 0)
    }
    expectNoSharedMemory(at: key)
  }

  @Test func negativeAndAbsurdSizesLeaveNothing() throws {
    let key = try unusedSharedMemoryKey()
    let negative = expectIPCError(.invalidArgument) {
      try SharedMemory(key: key, flags: .createExclusive, size: -1)
    }
    #expect(negative?.message.contains("negative") == true)
    expectIPCError(.invalidArgument) { try SharedMemory(key: key, flags: .create, size: Int.min) }
    for size in [Int.max, Int.max / 2 + 1] {
      let error = expectIPCError(.outOfRange) {
        try SharedMemory(key: key, flags: .createExclusive, size: size)
      }
      #expect(error?.message.contains("\(size)") == true)
    }
    if let shmmax = sharedMemoryMaximumSize, shmmax < Int.max / 2 {
      let error = expectIPCError(.outOfRange) {
        try SharedMemory(key: key, flags: .createExclusive, size: shmmax + 1)
      }
      #expect(error?.message.contains("SHMMAX") == true)
    }
    expectNoSharedMemory(at: key)
  }

  @Test func openingWithASizeLargerThanTheSegmentIsRefused() throws {
    let memory = try makeSharedMemory(size: 100, initCharacter: 0x2E)
    defer { try? memory.remove() }
    let error = expectIPCError(.invalidArgument) { try SharedMemory(key: memory.key, size: 101) }
    #expect(error?.message.contains("larger than the existing segment (100 bytes)") == true)
    expectIPCError(.invalidArgument) {
      try SharedMemory(key: memory.key, flags: .create, size: 4096)
    }
    let smaller = try SharedMemory(key: memory.key, size: 50)
    #expect(smaller.size == 100, "the segment's own size")
    #expect(try memory.numberAttached == 2)
    #expect(try memory.read() == [UInt8](repeating: 0x2E, count: 100))
  }

  @Test func badCountsAndOffsets() throws {
    let memory = try makeSharedMemory(size: 10, initCharacter: 0x2E)
    defer { try? memory.remove() }
    let count = expectIPCError(.invalidArgument) { try memory.read(count: -1) }
    #expect(count?.message.contains("count -1") == true)
    let offset = expectIPCError(.invalidArgument) { try memory.read(offset: -1) }
    #expect(offset?.message.contains("offset -1") == true)
    expectIPCError(.invalidArgument) { try memory.read(offset: 10) }
    expectIPCError(.invalidArgument) { try memory.read(count: Int.min, offset: Int.min) }
    expectIPCError(.invalidArgument) { try memory.write("a", offset: -1) }
    expectIPCError(.invalidArgument) { try memory.write("", offset: Int.min) }
    expectIPCError(.invalidArgument) { try memory.write("abc", offset: 8) }
    #expect(try memory.read() == [UInt8](repeating: 0x2E, count: 10), "nothing written")
  }

  @Test func badFlagsModesAndKeysLeaveNothing() throws {
    let key = try unusedSharedMemoryKey()
    expectIPCError(.invalidArgument) { try SharedMemory(key: nil, size: 10) }
    expectIPCError(.invalidArgument) { try SharedMemory(key: nil, flags: .create, size: 10) }
    expectIPCError(.invalidArgument) { try SharedMemory(key: key, flags: .exclusive, size: 10) }
    expectIPCError(.invalidArgument) {
      try SharedMemory(key: key, flags: .createExclusive, mode: 0o1600, size: 10)
    }
    expectIPCError(.invalidArgument) {
      try SharedMemory(key: key, flags: [.createExclusive, IPCFlags(rawValue: 0x4000_0000)])
    }
    expectNoSharedMemory(at: key)
  }

  @Test func badAttachFlagsAndAddresses() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    let unknown = expectIPCError(.invalidArgument) {
      try memory.attach(flags: SharedMemory.AttachFlags(rawValue: 0x4000_0000))
    }
    #expect(unknown?.message.contains("unknown attach flags") == true)
    #expect(memory.isAttached, "a refused attach leaves the attachment as it was")
    #if os(Linux)
      expectIPCError(.invalidArgument) { try memory.attach(flags: .remap) }
      #expect(memory.isAttached)
    #endif
    let address = try #require(memory.address)
    // The kernel picks no address when asked for a misaligned one without SHM_RND.
    expectIPCError(.invalidArgument) {
      try SharedMemory.attach(id: memory.id, address: address + 1)
    }
    expectIPCError(.existential) { try SharedMemory.attach(id: -1) }
    #expect(try memory.numberAttached == 1)
  }
}
