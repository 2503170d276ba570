import Foundation
import Synchronization
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Regression tests for issue 18's shared memory items (2, 6): each failed before its fix.
@Suite("SharedMemory defects (issue 18)")
struct SharedMemoryDefectTests {
  // Item 2: .remap over another attachment of this process is refused; nothing changes.
  #if os(Linux)
    @Test func remapOverAnotherAttachmentIsRefused() throws {
      let a = try makeSharedMemory(size: 1 << 20, initCharacter: 0x41)
      defer { try? a.remove() }
      let b = try makeSharedMemory(size: 4096, initCharacter: 0x42)
      defer { try? b.remove() }
      let bAddress = b.address
      for target in [a.address!, a.address! + 8192] {
        let error = expectIPCError(.invalidArgument) {
          try b.attach(address: target, flags: .remap)
        }
        #expect(error?.message.contains("remap") == true, "\(String(describing: error))")
      }
      #expect(try a.read(count: 4) == Array("AAAA".utf8), "a keeps its own bytes")
      #expect(b.isAttached && b.address == bAddress, "b keeps its mapping")
      #expect(try b.read(count: 4) == Array("BBBB".utf8))
      try a.detach()
      #expect(try b.read(count: 4) == Array("BBBB".utf8), "a's detach leaves b alone")
    }

    @Test func remapOverMemoryNoAttachmentHoldsWorks() throws {
      // A region of our own (not a freed address, which a parallel test could map meanwhile);
      // never unmapped (see reserveAddressRange).
      let length = 8192
      let region = try reserveAddressRange(length)
      let a = try makeSharedMemory(size: 8192, initCharacter: 0x41)
      defer { try? a.remove() }
      let b = try makeSharedMemory(size: 4096, initCharacter: 0x42)
      defer {
        try? b.detach()
        try? b.remove()
      }
      let target = UnsafeRawPointer(region)
      // No SharedMemory holds the region: .remap is allowed there, and a's mapping is untouched.
      try b.attach(address: target, flags: .remap)
      #expect(b.address == target)
      #expect(try b.read(count: 4) == Array("BBBB".utf8))
      #expect(try a.read(count: 4) == Array("AAAA".utf8))
      // And b re-attached at its own address replaces its own mapping.
      try b.attach(address: target, flags: .remap)
      #expect(b.address == target)
      #expect(try b.read(count: 4) == Array("BBBB".utf8))
    }

    // Review #16: the attach lock is no longer held across shmat/shmdt, yet a .remap attach
    // still never replaces another attachment that appears in its range meanwhile: b re-maps
    // itself over a region of ours (detaching first, which leaves a hole there) while a keeps
    // re-attaching wherever the kernel puts it, possibly into that hole.
    @Test(.timingSensitive) func remapNeverReplacesARacingAttachment() async throws {
      let length = 4096
      let region = try reserveAddressRange(length)
      let target = UInt(bitPattern: region)
      let a = try makeSharedMemory(size: 4096, initCharacter: 0x41)
      defer { try? a.remove() }
      let b = try makeSharedMemory(size: 4096, initCharacter: 0x42)
      defer {
        try? b.detach()
        try? b.remove()
      }
      let counts = ReattachCounts()
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          try await onThread {
            for _ in 0..<2000 {
              try a.attach()
              if try a.read(count: 1) != [0x41] { counts.failures.add(1, ordering: .relaxed) }
            }
          }
        }
        group.addTask {
          try await onThread {
            for _ in 0..<2000 {
              do {
                try b.attach(address: UnsafeRawPointer(bitPattern: target), flags: .remap)
                counts.reattached.add(1, ordering: .relaxed)
                if try b.read(count: 1) != [0x42] { counts.failures.add(1, ordering: .relaxed) }
              } catch let error as IPCError where error.kind == .invalidArgument {
                counts.busy.add(1, ordering: .relaxed)  // a holds (part of) the region
              }
            }
          }
        }
        try await group.waitForAll()
      }
      #expect(counts.failures.load(ordering: .relaxed) == 0, "an attachment read the other's bytes")
      #expect(counts.reattached.load(ordering: .relaxed) > 0)
      #expect(try a.read(count: 4) == Array("AAAA".utf8))
      #expect(try a.numberAttached == 1, "no mapping of a leaked")
    }
  #endif

  // Item 6: re-attaching an attached segment never makes concurrent accesses fail with
  // .notAttached (attach may be refused with .busy; the readers always succeed). Its readers
  // keep both cores busy: it takes its turn with the timing tests.
  @Test(.timingSensitive) func reattachDoesNotFailConcurrentReaders() async throws {
    let memory = try makeSharedMemory(size: 4096, initCharacter: 0x43)
    defer { try? memory.remove() }
    let counts = ReattachCounts()
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<2 {
        group.addTask {
          try await onThread {
            while !counts.stop.load(ordering: .relaxed) {
              do {
                _ = try memory.read(count: 4)
                counts.reads.add(1, ordering: .relaxed)
              } catch {
                counts.failures.add(1, ordering: .relaxed)
              }
            }
          }
        }
      }
      group.addTask {
        try await onThread {
          defer { counts.stop.store(true, ordering: .relaxed) }
          for _ in 0..<3000 {
            do {
              try memory.attach()
              counts.reattached.add(1, ordering: .relaxed)
            } catch let error as IPCError where error.kind == .busy {
              counts.busy.add(1, ordering: .relaxed)
            }
          }
        }
      }
      try await group.waitForAll()
    }
    #expect(counts.failures.load(ordering: .relaxed) == 0, "reads failed during re-attaches")
    #expect(counts.reads.load(ordering: .relaxed) > 0)
    #expect(
      counts.reattached.load(ordering: .relaxed) > 0, "busy \(counts.busy.load(ordering: .relaxed))"
    )
    #expect(try memory.read(count: 4) == Array("CCCC".utf8))
    #expect(try memory.numberAttached == 1, "no mapping leaked")
  }
}

/// What the re-attach test's threads count.
final class ReattachCounts: Sendable {
  let stop = Atomic<Bool>(false)
  let failures = Atomic<Int>(0)
  let reads = Atomic<Int>(0)
  let reattached = Atomic<Int>(0)
  let busy = Atomic<Int>(0)
}
