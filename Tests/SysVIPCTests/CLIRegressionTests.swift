// Regression tests for the tool and docs-script defects of issue 18 (items 8-12, 15): each
// failed before its fix.
import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

@Suite("sysvipc: issue 18's tool defects stay fixed")
struct CLIRegressionTests {
  /// Item 8: `create mq --or-open --max-bytes` opens an existing queue untouched.
  @Test func createOrOpenLeavesAnExistingQueuesCapacity() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let before = try queue.maxSize
    #expect(before != 100)
    let smaller = try await sysvipc(
      "create", "mq", "--key", queue.key.description, "--or-open", "--max-bytes", "100")
    #expect(smaller.status == 0, "\(smaller)")
    #expect(smaller.output == "\(queue.id)\n", "\(smaller)")
    #expect(try queue.maxSize == before, "the existing queue's msg_qbytes is unchanged")
    // Above msgmnb an unprivileged process gets EPERM from IPC_SET: an open must not try it.
    let larger = try await sysvipc(
      "create", "mq", "--key", queue.key.description, "--or-open", "--max-bytes", "99999999")
    #expect(larger.status == 0, "\(larger)")
    #expect(larger.output == "\(queue.id)\n", "\(larger)")
    #expect(try queue.maxSize == before)

    // A queue the call creates still gets its capacity.
    let key = try unusedKey()
    defer { removeObjects(withKey: key) }
    let created = try await sysvipc(
      "create", "mq", "--key", key.description, "--or-open", "--max-bytes", "100")
    #expect(created.status == 0, "\(created)")
    #expect(try MessageQueue(key: key).maxSize == 100)
  }

  /// Item 9: `create shm --or-open --size` opens an existing, smaller segment.
  @Test func createOrOpenOpensASmallerSegment() async throws {
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 100)
    defer { try? memory.remove() }
    let opened = try await sysvipc(
      "create", "shm", "--key", memory.key.description, "--or-open", "--size", "4096")
    #expect(opened.status == 0, "\(opened)")
    #expect(opened.output == "\(memory.id)\n", "\(opened)")
    #expect(try IPCSystem.object(.sharedMemory, id: memory.id).size == 100)
  }

  /// Item 10: with --key, `send` and `write` take their text as the positional argument.
  @Test func sendAndWriteTakeTheirTextWithKey() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let key = queue.key.description
    #expect(try await sysvipc("send", "--key", key, "hello").status == 0)
    #expect(try await sysvipc("send", "--key", key, "--", "-dash").status == 0)
    #expect(try await sysvipc("send", String(queue.id), "by id").status == 0)
    #expect(try receiveAtOnce(queue) == Array("hello".utf8))
    #expect(try receiveAtOnce(queue) == Array("-dash".utf8))
    #expect(try receiveAtOnce(queue) == Array("by id".utf8))
    // Too many words, or none, are usage errors that name the problem.
    let extra = try await sysvipc("send", "--key", key, "a", "b")
    #expect(extra.status == 2 && extra.errors.contains("Give one text"), "\(extra)")
    let none = try await sysvipc("send", "--key", key)
    #expect(none.status == 2 && none.errors.contains("Give the text, or --stdin"), "\(none)")

    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 64)
    defer { try? memory.remove() }
    let written = try await sysvipc("write", "--key", memory.key.description, "hello", "--nul")
    #expect(written.status == 0, "\(written)")
    #expect(try memory.read(count: 6) == Array("hello\u{0}".utf8))
  }

  /// Item 15: `info` names its object by --key too.
  @Test func infoTakesAKey() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let info = try await sysvipc("info", "mq", "--key", queue.key.description, "--json")
    #expect(info.status == 0, "\(info)")
    let fields = try #require(try json(info) as? [String: Any])
    #expect(fields["id"] as? Int == Int(queue.id))
    #expect(fields["schemaVersion"] as? Int == 1)
    let both = try await sysvipc("info", "mq", String(queue.id), "--key", queue.key.description)
    #expect(both.status == 2, "\(both)")
  }

  /// Item 11, the tool's side: `send ID text` as a user who may write the queue but not read
  /// it. The tool reads nothing about the queue itself, and `MessageQueue(id:)` reads no
  /// IPC_STAT.
  @Test(
    .enabled(if: isRoot, "needs root to create a queue that nobody may only write"),
    .enabled(if: CLITests.setpriv != nil, "needs setpriv (util-linux) to run sysvipc as nobody"))
  func sendNeedsOnlyWritePermission() async throws {
    let setpriv = try #require(CLITests.setpriv)
    let who = try await LaunchedProcess.run(setpriv, CLITests.asNobody + ["/usr/bin/id", "-u"])
    try #require(who.output == "65534\n", "setpriv really drops privileges: \(who)")
    let queue = try MessageQueue(key: nil, flags: .createExclusive, mode: 0o622)
    defer { try? queue.remove() }
    let sent = try await LaunchedProcess.run(
      setpriv, CLITests.asNobody + [builtProduct("sysvipc"), "send", String(queue.id), "w"])
    let received = try? receiveAtOnce(queue)
    #expect(sent.status == 0, "\(sent)")
    #expect(received == Array("w".utf8))
  }

  /// Item 12: Scripts/build-docs.sh works twice in a row, into a folder that does not exist
  /// yet, with an output path relative to the caller's directory. A compile is a load: it
  /// takes turns with the timing tests, and runs at the lowest CPU priority.
  @Test(
    .timingSensitive,
    .enabled(
      if: FileManager.default.isExecutableFile(
        atPath: URL(fileURLWithPath: onPath("swift") ?? "/nonexistent")
          .resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("docc")
          .path) || onPath("docc") != nil,
      "needs the toolchain's docc"))
  func buildDocsWorksEveryTime() async throws {
    let directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-docs-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let script = packageRoot + "/Scripts/build-docs.sh"
    for run in 1...2 {
      let outcome = try await LaunchedProcess.run(
        "/usr/bin/nice", ["-n", "19", script, "not/yet/SysVIPC.doccarchive"],
        directory: directory, timeout: .seconds(900))
      #expect(outcome.status == 0, "run \(run): \(outcome)")
      let index = directory + "/not/yet/SysVIPC.doccarchive/data/documentation/sysvipc.json"
      #expect(FileManager.default.fileExists(atPath: index), "run \(run): \(outcome)")
    }
  }
}

/// The first message, without waiting (the blocking, non-async receive).
func receiveAtOnce(_ queue: MessageQueue) throws -> [UInt8] {
  try queue.receive(block: false).message
}
