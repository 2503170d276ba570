import Foundation
import Synchronization
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Flags shared between a test and a body running on another thread.
final class SharedMemoryTestSignals: Sendable {
  let inside = Atomic<Bool>(false)
  let release = Atomic<Bool>(false)
  let stop = Atomic<Bool>(false)
}

/// Whether glibc's malloc debugging library (for mtrace) is installed.
var mallocDebugLibraryInstalled: Bool {
  [
    "/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
  ].contains { FileManager.default.fileExists(atPath: "\($0)/libc_malloc_debug.so.0") }
}

struct SharedMemoryTestFailure: Error {}

@Suite("SharedMemory: zero-copy access (the buffer protocol)")
struct SharedMemoryAccessTests {
  @Test func mutableViewWritesThroughToTheSegment() throws {
    let memory = try makeSharedMemory(size: 100, initCharacter: 0)
    defer { try? memory.remove() }
    let other = try SharedMemory.attach(id: memory.id)  // another mapping of the same segment
    #expect(other.address != memory.address)
    try memory.withUnsafeMutableBytes { buffer in
      #expect(buffer.count == 100, "the segment's size, not the page's")
      buffer.copyBytes(from: "ABC".utf8)
    }
    #expect(try memory.read(count: 3) == Array("ABC".utf8))
    #expect(try other.read(count: 3) == Array("ABC".utf8))
    try memory.withMutableBytes { span in
      #expect(span.byteCount == 100)
      span.storeBytes(of: UInt32(0xDEAD_BEEF).littleEndian, toByteOffset: 96, as: UInt32.self)
    }
    #expect(try other.read(offset: 96) == [0xEF, 0xBE, 0xAD, 0xDE])
  }

  @Test func writeShowsThroughAView() throws {
    let memory = try makeSharedMemory(size: 64, initCharacter: 0x2E)
    defer { try? memory.remove() }
    try memory.write("xyz", offset: 5)
    let viaPointer = try memory.withUnsafeBytes { Array($0[5..<8]) }
    #expect(viaPointer == Array("xyz".utf8))
    let viaSpan = try memory.withBytes { span in
      (5..<8).map { span.unsafeLoad(fromByteOffset: $0, as: UInt8.self) }
    }
    #expect(viaSpan == Array("xyz".utf8))
    let count = try memory.withBytes { $0.byteCount }
    #expect(count == 64)
    let other = try SharedMemory.attach(id: memory.id, flags: .readOnly)
    try other.withUnsafeBytes { buffer in #expect(buffer[4] == 0x2E && buffer[5] == 0x78) }
  }

  @Test func readOnlyAttachmentRefusesMutableViews() throws {
    let memory = try makeSharedMemory(size: 8, initCharacter: 0x41)
    defer { try? memory.remove() }
    try memory.attach(flags: .readOnly)
    let error = expectIPCError(.permissions) {
      try memory.withUnsafeMutableBytes { _ in Issue.record("body ran on a read-only mapping") }
    }
    #expect(error?.message.contains("withUnsafeMutableBytes") == true)
    expectIPCError(.permissions) {
      try memory.withMutableBytes { _ in Issue.record("body ran on a read-only mapping") }
    }
    expectIPCError(.permissions) {
      try memory.withUnsafeMutableBytes { (_) throws in Issue.record("body ran") }
    }
    expectIPCError(.permissions) {
      try memory.withMutableBytes { (_) throws in Issue.record("body ran") }
    }
    #expect(try memory.withUnsafeBytes { $0[0] } == 0x41, "reading is allowed")
    #expect(try memory.withBytes { $0.unsafeLoad(as: UInt8.self) } == 0x41)
  }

  @Test func accessAfterDetachIsNotAttached() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    try memory.detach()
    expectIPCError(.notAttached) { try memory.withUnsafeBytes { _ in Issue.record("body ran") } }
    expectIPCError(.notAttached) {
      try memory.withUnsafeBytes { (_) throws in Issue.record("body ran") }
    }
    expectIPCError(.notAttached) {
      try memory.withUnsafeMutableBytes { _ in Issue.record("body ran") }
    }
    expectIPCError(.notAttached) { try memory.withBytes { _ in Issue.record("body ran") } }
    expectIPCError(.notAttached) { try memory.withMutableBytes { _ in Issue.record("body ran") } }
  }

  @Test func noDetachWhileABodyRuns() throws {
    let memory = try makeSharedMemory(size: 16, initCharacter: 0x61)
    defer { try? memory.remove() }
    try memory.withUnsafeBytes { buffer in
      let error = expectIPCError(.busy) { try memory.detach() }
      #expect(error?.message.contains("shmdt") == true)
      expectIPCError(.busy) { try memory.attach() }
      expectIPCError(.busy) { try memory.attach(flags: .readOnly) }
      // The body may use the object: reads, writes and nested views.
      #expect(try memory.read(count: 1) == [0x61])
      try memory.write("b")
      try memory.withMutableBytes { span in
        span.storeBytes(of: UInt8(ascii: "c"), toByteOffset: 1, as: UInt8.self)
      }
      #expect(buffer[0] == 0x62 && buffer[1] == 0x63)
    }
    #expect(memory.isAttached)
    try memory.detach()
  }

  @Test func bodyErrorsPassThroughAndEndTheAccess() throws {
    let memory = try makeSharedMemory()
    defer { try? memory.remove() }
    let typed = expectIPCError(.outOfRange) {
      try memory.withUnsafeBytes { (_) throws(IPCError) in
        throw IPCError(.outOfRange, "from the body")
      }
    }
    #expect(typed?.message == "from the body")
    #expect(throws: SharedMemoryTestFailure.self) {
      try memory.withMutableBytes { (_) throws in throw SharedMemoryTestFailure() }
    }
    #expect(throws: SharedMemoryTestFailure.self) {
      try memory.withBytes { (_) throws in throw SharedMemoryTestFailure() }
    }
    #expect(throws: SharedMemoryTestFailure.self) {
      try memory.withUnsafeMutableBytes { (_) throws in throw SharedMemoryTestFailure() }
    }
    try memory.detach()  // not busy: every access ended
  }

  @Test func detachFromAnotherThreadIsRefusedWhileABodyRuns() async throws {
    let memory = try makeSharedMemory(initCharacter: 0x5A)
    defer { try? memory.remove() }
    let signals = SharedMemoryTestSignals()
    async let seen: UInt8 = onThread {
      try memory.withUnsafeBytes { buffer in
        signals.inside.store(true, ordering: .sequentiallyConsistent)
        for _ in 0..<30_000 where !signals.release.load(ordering: .sequentiallyConsistent) {
          usleep(1000)
        }
        return buffer[0]
      }
    }
    do {
      try await waitUntil("the body runs on its thread") {
        signals.inside.load(ordering: .sequentiallyConsistent)
      }
      expectIPCError(.busy) { try memory.detach() }
      expectIPCError(.busy) { try memory.attach() }
      #expect(memory.isAttached)
    } catch {
      signals.release.store(true, ordering: .sequentiallyConsistent)
      _ = try await seen
      throw error
    }
    signals.release.store(true, ordering: .sequentiallyConsistent)
    #expect(try await seen == 0x5A)
    try memory.detach()
  }

  @Test func concurrentAccessWhileAnotherThreadDetachesAndAttaches() async throws {
    let workers = 6
    let rounds = 2000
    let memory = try makeSharedMemory(size: workers * 8, initCharacter: 0)
    defer { try? memory.remove() }
    let signals = SharedMemoryTestSignals()
    let churner = Task {
      try await onThread {
        var detached = 0
        while !signals.stop.load(ordering: .sequentiallyConsistent) {
          do {
            try memory.detach()
            detached += 1
            try memory.attach()
          } catch let error as IPCError where error.kind == .busy {
            continue
          }
        }
        return detached
      }
    }
    try await withThrowingTaskGroup(of: Int.self) { group in
      for worker in 0..<workers {
        group.addTask {
          try await onThread {
            var retries = 0
            var done = 0
            while done < rounds {
              do {
                try memory.withUnsafeMutableBytes { buffer in
                  let value = buffer.load(fromByteOffset: worker * 8, as: UInt64.self)
                  buffer.storeBytes(of: value + 1, toByteOffset: worker * 8, as: UInt64.self)
                }
                done += 1
              } catch let error as IPCError where error.kind == .notAttached {
                retries += 1
              }
            }
            return retries
          }
        }
      }
      for try await _ in group {}
    }
    signals.stop.store(true, ordering: .sequentiallyConsistent)
    let detached = try await churner.value
    #expect(memory.isAttached)
    let counts = try memory.withBytes { span in
      (0..<workers).map { span.unsafeLoad(fromByteOffset: $0 * 8, as: UInt64.self) }
    }
    #expect(counts == [UInt64](repeating: UInt64(rounds), count: workers), "detached \(detached)×")
  }

  @Test(
    .enabled(
      if: mallocDebugLibraryInstalled, "needs glibc's libc_malloc_debug.so.0 (for mtrace)"),
    .disabled(if: underSanitizer, "the sanitizer replaces malloc: mtrace sees none of its calls"))
  func zeroCopyPathsDoNotAllocate() async throws {
    let memory = try makeSharedMemory(initCharacter: 0)
    defer { try? memory.remove() }
    let outcome = try await HelperProcess.run(["shm-alloc-check", String(memory.id)])
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("allocations") == "0", "\(outcome.output)")
    let control = try #require(outcome.value("controlAllocations").flatMap(Int.init))
    #expect(control >= 1000, "the count must see read()'s arrays: \(outcome.output)")
  }
}
