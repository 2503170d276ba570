import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Runs `body` with a helper started with `arguments`, and kills the helper afterwards, also
/// when `body` throws.
func withSharedMemoryHelper<T>(
  _ arguments: [String], _ body: (HelperProcess) async throws -> T
) async throws -> T {
  let helper = try HelperProcess(arguments)
  do {
    let result = try await body(helper)
    await helper.terminate()
    return result
  } catch {
    await helper.terminate()
    throw error
  }
}

/// Polls until the segment with this id is destroyed (its IPC_STAT fails as existential).
func waitUntilSharedMemoryIsGone(_ memory: SharedMemory) async throws {
  try await waitUntil("shared memory \(memory.id) is destroyed") {
    do {
      _ = try memory.status()
      return false
    } catch let error as IPCError where error.kind == .existential {
      return true
    }
  }
}

@Suite("SharedMemory: two processes")
struct SharedMemoryProcessTests {
  @Test func helperWritesThisProcessReads() async throws {
    let memory = try makeSharedMemory(initCharacter: 0)
    defer { try? memory.remove() }
    #expect(try memory.numberAttached == 1)
    try await withSharedMemoryHelper(["shm-write", String(memory.id), "100", "hello", "--hold"]) {
      helper in
      try await helper.waitForLine("holding", "yes")
      #expect(helper.value("written") == "yes")
      #expect(try memory.read(count: 5, offset: 100) == Array("hello".utf8))
      #expect(try memory.read(count: 1, offset: 99) == [0])
      #expect(try memory.numberAttached == 2, "the helper's attachment counts")
      let last = try memory.lastPID
      #expect(last == helper.pid, "last attach or detach by \(processDescription(last))")
    }
    try await waitUntil("the helper's exit detached it") { try memory.numberAttached == 1 }
  }

  @Test func thisProcessWritesHelperReads() async throws {
    let memory = try makeSharedMemory(size: 256)
    defer { try? memory.remove() }
    try memory.write("from swift", offset: 200)
    try memory.withUnsafeMutableBytes { $0.copyBytes(from: "via view".utf8) }
    let far = try await HelperProcess.run(["shm-read", String(memory.id), "200", "100"])
    #expect(far.ok, "\(far.output)")
    #expect(far.value("size") == "256")
    #expect(far.value("text") == "from swift" + String(repeating: " ", count: 46), "clipped")
    let near = try await HelperProcess.run(["shm-read", String(memory.id), "0", "8"])
    #expect(near.value("text") == "via view", "\(near.output)")
  }

  @Test func removingWhileTheHelperIsAttachedKeepsTheSegmentUntilItDetaches() async throws {
    let memory = try makeSharedMemory(size: 64, initCharacter: 0)
    defer { try? memory.remove() }
    try await withSharedMemoryHelper(["shm-write", String(memory.id), "0", "still here", "--hold"])
    { helper in
      try await helper.waitForLine("holding", "yes")
      try memory.detach()
      #expect(try memory.numberAttached == 1)
      try memory.remove()
      let removed = try memory.status()
      #expect(removed.isMarkedForRemoval)
      #expect(removed.numberAttached == 1, "the helper keeps it alive")
      #expect(removed.size == 64)
      #expect(removed.lastPID == getpid(), "this process detached last")
      expectIPCError(.existential) { try SharedMemory(key: memory.key) }
      // Still attachable by id while it lives (Linux), and still holding the helper's bytes.
      let again = try SharedMemory.attach(id: memory.id)
      #expect(try again.read(count: 10) == Array("still here".utf8))
      try again.detach()
      #expect(try memory.numberAttached == 1)
    }
    try await waitUntilSharedMemoryIsGone(memory)
    expectIPCError(.existential) { try SharedMemory.attach(id: memory.id) }
  }

  @Test func helperOpensByKeyAndAttachesByID() async throws {
    let memory = try makeSharedMemory(size: 32, initCharacter: 0x2E)
    defer { try? memory.remove() }
    let opened = try await HelperProcess.run([
      "shm-open", String(memory.key.rawValue), "--read", "4", "--write", "key!", "--offset", "8",
    ])
    #expect(opened.ok, "\(opened.output)")
    #expect(opened.value("id") == String(memory.id))
    #expect(opened.value("readOnly") == "no")
    #expect(opened.value("text") == "....")
    #expect(try memory.read(count: 4, offset: 8) == Array("key!".utf8))
    let tooBig = try await HelperProcess.run([
      "shm-open", String(memory.key.rawValue), "--size", "33",
    ])
    #expect(tooBig.errorKind == "invalidArgument", "\(tooBig.output)")
    let readOnly = try await HelperProcess.run(["shm-attach", String(memory.id), "--readonly"])
    #expect(readOnly.ok)
    #expect(readOnly.value("readOnly") == "yes")
  }
}

@Suite("SharedMemory: permissions, as nobody")
struct SharedMemoryPermissionTests {
  @Test(.enabled(if: isRoot, "needs root: the helper must drop to nobody"))
  func nobodyCannotAttachARoot0600Segment() async throws {
    let memory = try makeSharedMemory(mode: 0o600)
    defer { try? memory.remove() }
    for arguments in [
      ["shm-attach", String(memory.id)],
      ["shm-attach", String(memory.id), "--readonly"],
      ["shm-open", String(memory.key.rawValue), "--mode", "444"],
      ["shm-open", String(memory.key.rawValue)],
    ] {
      let outcome = try await HelperProcess.run(["--as-nobody"] + arguments)
      #expect(outcome.value("privileges") == "dropped", "\(outcome.output)")
      #expect(outcome.errorKind == "permissions", "\(arguments): \(outcome.output)")
    }
    #expect(try memory.numberAttached == 1)
  }

  @Test(.enabled(if: isRoot, "needs root: the helper must drop to nobody"))
  func nobodyAttachesARoot0644SegmentReadOnlyAndCannotWrite() async throws {
    let memory = try makeSharedMemory(size: 64, mode: 0o644, initCharacter: 0)
    defer { try? memory.remove() }
    try memory.write("root data")

    let opened = try await HelperProcess.run([
      "--as-nobody", "shm-open", String(memory.key.rawValue), "--mode", "444", "--read", "9",
      "--write", "hacked",
    ])
    #expect(opened.value("privileges") == "dropped", "\(opened.output)")
    #expect(opened.value("readOnly") == "yes", "mode 0o444 attaches read-only")
    #expect(opened.value("text") == "root data")
    #expect(opened.errorKind == "permissions", "\(opened.output)")
    #expect(opened.value("written") == nil)

    let readWrite = try await HelperProcess.run(["--as-nobody", "shm-attach", String(memory.id)])
    #expect(readWrite.value("privileges") == "dropped")
    #expect(readWrite.errorKind == "permissions", "\(readWrite.output)")
    let writeMode = try await HelperProcess.run([
      "--as-nobody", "shm-open", String(memory.key.rawValue), "--mode", "666",
    ])
    #expect(writeMode.value("privileges") == "dropped")
    #expect(writeMode.errorKind == "permissions", "\(writeMode.output)")

    let readOnly = try await HelperProcess.run([
      "--as-nobody", "shm-attach", String(memory.id), "--readonly", "--read", "4",
    ])
    #expect(readOnly.value("privileges") == "dropped")
    #expect(readOnly.ok, "\(readOnly.output)")
    #expect(readOnly.value("text") == "root")

    #expect(try memory.read(count: 9) == Array("root data".utf8), "nothing was written")
  }
}
