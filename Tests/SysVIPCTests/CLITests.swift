import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Runs the built `sysvipc` to its end.
func sysvipc(_ arguments: String..., input: String? = nil) async throws -> LaunchedProcess.Outcome {
  try await LaunchedProcess.run(builtProduct("sysvipc"), arguments, input: input)
}

/// The JSON a command printed.
func json(_ outcome: LaunchedProcess.Outcome) throws -> Any {
  try JSONSerialization.jsonObject(with: Data(outcome.output.utf8))
}

@Suite("sysvipc: the command-line tool")
struct CLITests {
  @Test func helpDocumentsTheExitStatuses() async throws {
    let help = try await sysvipc("--help")
    #expect(help.status == 0, "\(help)")
    for line in [
      "Exit status:", "0  success", "1  the IPC operation failed", "2  usage error", "3  busy",
    ] {
      #expect(help.output.contains(line), "\(line)\n\(help)")
    }
    for command in [
      "list", "limits", "summary", "info", "remove", "create", "acquire", "release", "send",
      "receive", "read",
      "write", "demo",
    ] {
      #expect(help.output.contains("  \(command) "), "\(command) in the help")
    }
    #expect(!help.output.contains("demo-conclusion"), "the demo's second process is hidden")
  }

  @Test(arguments: [
    ["bogus"], ["info", "sem", "abc"], ["info", "nonsense", "1"], ["acquire"],
    ["acquire", "1", "--key", "2"], ["create", "shm", "--value", "1"], ["remove", "sem"],
    ["acquire", "1", "--timeout", "-1"], ["create", "sem", "--mode", "999"],
  ])
  func usageErrorsExitWith2(_ arguments: [String]) async throws {
    let outcome = try await LaunchedProcess.run(builtProduct("sysvipc"), arguments)
    #expect(outcome.status == 2, "\(outcome)")
    #expect(outcome.errors.contains("Error:") || outcome.errors.contains("Usage:"), "\(outcome)")
    #expect(outcome.output.isEmpty, "errors go to standard error")
  }

  @Test func listShowsASemaphoreInTheTableAndInJSON() async throws {
    let semaphore = try makeSemaphore(initialValue: 2, mode: 0o640)
    defer { try? semaphore.remove() }

    let table = try await sysvipc("list")
    #expect(table.status == 0, "\(table)")
    let lines = table.output.split(separator: "\n")
    #expect(lines.first?.hasPrefix("KIND  ") == true && lines.first?.contains("LPID") == true)
    let row = try #require(
      lines.first { $0.contains(" \(semaphore.id) ") && $0.contains(semaphore.key.description) },
      "\(table)")
    let cells = row.split(separator: " ", omittingEmptySubsequences: true)
    #expect(cells[0] == "sem")
    #expect(cells[1] == Substring(semaphore.key.description))
    #expect(cells[2] == Substring(String(semaphore.id)))
    #expect(cells[3] == "root" || cells[3] == Substring(String(geteuid())))
    #expect(cells[4] == "0640")
    #expect(row.contains("1 sem"))

    let listed = try await sysvipc("list", "--json")
    #expect(listed.status == 0, "\(listed)")
    let report = try #require(try json(listed) as? [String: Any])
    #expect(report["schemaVersion"] as? Int == 1)
    let entries = try #require(report["objects"] as? [[String: Any]])
    let entry = try #require(
      entries.first {
        $0["kind"] as? String == "semaphore" && $0["id"] as? Int == Int(semaphore.id)
      })
    #expect(entry["key"] as? Int == Int(semaphore.key.rawValue))
    #expect(entry["keyHex"] as? String == semaphore.key.description)
    #expect(entry["mode"] as? String == "0640")
    #expect(entry["uid"] as? Int == Int(geteuid()))
    #expect(entry["cuid"] as? Int == Int(geteuid()))
    #expect(entry["semaphoreCount"] as? Int == 1)
    #expect(entry["size"] == nil, "only the kind's own fields")
    #expect(entry["lastChangeTime"] is String)

    let shmOnly = try await sysvipc("list", "--kind", "shm", "--json")
    let shmReport = try #require(try json(shmOnly) as? [String: Any])
    let shmEntries = try #require(shmReport["objects"] as? [[String: Any]])
    #expect(shmEntries.allSatisfy { $0["kind"] as? String == "sharedMemory" })
  }

  @Test func limitsAgreeWithTheLibrary() async throws {
    let limits = try IPCSystem.limits()
    let outcome = try await sysvipc("limits", "--json")
    #expect(outcome.status == 0, "\(outcome)")
    let report = try #require(try json(outcome) as? [String: Any])
    let values = try #require(report["limits"] as? [String: Any])
    #expect(values.count == 12)
    for (name, value) in limits.all {
      #expect(values[name] as? Int == value, "\(name)")
    }
    let table = try await sysvipc("limits")
    #expect(table.output.contains("semvmx    \(limits.semvmx ?? -1)"), "\(table)")
  }

  @Test func infoShowsASemaphoresValueAndWaiters() async throws {
    let semaphore = try makeSemaphore(initialValue: 0)
    defer { try? semaphore.remove() }
    let waiter = try HelperProcess(["sem-acquire", String(semaphore.id)])
    try await waitUntil("a waiter") { try semaphore.waitingForNonzero == 1 }

    let info = try await sysvipc("info", "sem", String(semaphore.id), "--json")
    #expect(info.status == 0, "\(info)")
    let fields = try #require(try json(info) as? [String: Any])
    #expect(fields["values"] as? [Int] == [0])
    #expect(fields["waitingForNonzero"] as? Int == 1)
    #expect(fields["waitingForZero"] as? Int == 0)

    try semaphore.release()
    #expect(try await waiter.outcome().ok)
    let text = try await sysvipc("info", "semaphore", String(semaphore.id))
    #expect(text.output.contains("waitingForNonzero:  0"), "\(text)")
    #expect(text.output.contains("lastPID:            \(waiter.pid)"), "\(text)")
  }

  @Test func semaphoreLifecycleFromTheShell() async throws {
    let created = try await sysvipc("create", "sem", "--value", "1", "--print-key")
    #expect(created.status == 0, "\(created)")
    let words = created.output.split(whereSeparator: \.isWhitespace)
    let first = try #require(words.first)
    let id = try #require(Int32(first))
    defer { try? SysVIPC.Semaphore.remove(id: id) }
    let semaphore = try SysVIPC.Semaphore(id: id)
    #expect(words.count == 2 && words[1] == Substring(semaphore.key.description))
    #expect(try semaphore.value == 1)
    #expect(try semaphore.mode == 0o600)

    #expect(try await sysvipc("acquire", String(id)).status == 0)
    #expect(try semaphore.value == 0)

    let busy = try await sysvipc("acquire", String(id), "--nowait")
    #expect(busy.status == 3, "\(busy)")
    #expect(busy.errors.contains("would block"), "\(busy)")

    let start = ContinuousClock.now
    let timedOut = try await sysvipc("acquire", String(id), "--timeout", "0.3")
    #expect(timedOut.status == 3, "\(timedOut)")
    #expect(timedOut.errors.contains("timed out"), "\(timedOut)")
    #expect(ContinuousClock.now - start >= .milliseconds(300))

    #expect(try await sysvipc("release", String(id), "--delta", "2").status == 0)
    #expect(try semaphore.value == 2)
    #expect(try await sysvipc("acquire", "--key", semaphore.key.description).status == 0)
    #expect(try semaphore.value == 1)

    #expect(try await sysvipc("remove", "sem", String(id)).status == 0)
    expectIPCError(.existential) { try semaphore.value }
    let again = try await sysvipc("remove", "sem", String(id))
    #expect(again.status == 1, "\(again)")
    #expect(again.errors.contains("semaphore \(id)"), "\(again)")
  }

  @Test func acquireWaitsForARelease() async throws {
    let semaphore = try makeSemaphore(initialValue: 0)
    defer { try? semaphore.remove() }
    let acquire = try LaunchedProcess(builtProduct("sysvipc"), ["acquire", String(semaphore.id)])
    try await waitUntil("sysvipc waits") { try semaphore.waitingForNonzero == 1 }
    try semaphore.release()
    let outcome = try await acquire.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(try semaphore.value == 0)
    #expect(try semaphore.lastPID == acquire.pid)
  }

  @Test func createByKeyIsExclusiveUnlessOrOpen() async throws {
    let key = try unusedKey()
    defer { removeObjects(withKey: key) }
    let first = try await sysvipc("create", "sem", "--key", String(key.rawValue), "--value", "3")
    #expect(first.status == 0, "\(first)")
    let id = try #require(Int32(first.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(try SysVIPC.Semaphore(key: key).id == id)

    let clash = try await sysvipc("create", "sem", "--key", key.description)
    #expect(clash.status == 1, "\(clash)")
    #expect(clash.errors.contains("already exists"), "\(clash)")

    let opened = try await sysvipc(
      "create", "sem", "--key", key.description, "--or-open", "--value", "9")
    #expect(opened.status == 0, "\(opened)")
    #expect(opened.output.trimmingCharacters(in: .whitespacesAndNewlines) == String(id))
    #expect(try SysVIPC.Semaphore(id: id).value == 3, "--or-open keeps the value")

    let removed = try await sysvipc("remove", "sem", "--key", key.description)
    #expect(removed.status == 0, "\(removed)")
    #expect(try objects(withKey: key).isEmpty)
  }

  @Test func semaphoreSetsFromTheShell() async throws {
    let created = try await sysvipc("create", "sem", "--count", "3", "--value", "5")
    #expect(created.status == 0, "\(created)")
    let id = try #require(Int32(created.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    defer { try? SemaphoreSet(id: id).remove() }
    #expect(try SemaphoreSet(id: id).values() == [5, 5, 5])
    let info = try await sysvipc("info", "sem", String(id))
    #expect(info.output.contains("values:             5 5 5"), "\(info)")
    #expect(info.output.contains("semaphoreCount:     3"), "\(info)")
  }

  @Test func sharedMemoryFromTheShell() async throws {
    let created = try await sysvipc("create", "shm", "--size", "100", "--mode", "640")
    #expect(created.status == 0, "\(created)")
    let id = try #require(Int32(created.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    defer { try? SharedMemory.remove(id: id) }
    let info = try IPCSystem.object(.sharedMemory, id: id)
    #expect(info.size == 100 && info.mode == 0o640 && info.attachCount == 0)

    #expect(try await sysvipc("write", String(id), "hello", "--nul").status == 0)
    let text = try await sysvipc("read", String(id), "--text")
    #expect(text.status == 0 && text.output == "hello\n", "\(text)")
    let raw = try await sysvipc("read", String(id), "--count", "7")
    #expect(Array(raw.output.utf8) == Array("hello\u{0} ".utf8), "\(raw)")

    // From standard input, at an offset.
    let inputPath = FileManager.default.temporaryDirectory
      .appendingPathComponent("sysvipc-input-\(UUID().uuidString)").path
    try "XY".write(toFile: inputPath, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: inputPath) }
    let fromInput = try await sysvipc(
      "write", String(id), "--stdin", "--offset", "1", input: inputPath)
    #expect(fromInput.status == 0, "\(fromInput)")
    #expect(try await sysvipc("read", String(id), "--text").output == "hXYlo\n")

    let pastEnd = try await sysvipc("write", String(id), "too long", "--offset", "95")
    #expect(pastEnd.status == 1, "\(pastEnd)")
    #expect(try await sysvipc("read", String(id), "--text").output == "hXYlo\n", "nothing written")

    let listed = try await sysvipc("list", "--kind", "shm")
    let row = try #require(listed.output.split(separator: "\n").first { $0.contains(" \(id) ") })
    #expect(row.contains("100 B"), "\(row)")
    #expect(try await sysvipc("remove", "shm", String(id)).status == 0)
    #expect(throws: IPCError.self) { try IPCSystem.object(.sharedMemory, id: id) }
  }

  @Test func ipcFailuresExitWith1AndSayWhy() async throws {
    let semaphore = try makeSemaphore()
    let id = semaphore.id
    try semaphore.remove()
    for arguments in [
      ["info", "sem", String(id)], ["acquire", String(id)], ["release", String(id)],
    ] {
      let outcome = try await LaunchedProcess.run(builtProduct("sysvipc"), arguments)
      #expect(outcome.status == 1, "\(arguments): \(outcome)")
      #expect(outcome.errors.hasPrefix("sysvipc: "), "\(outcome)")
      #expect(outcome.errors.contains("does not exist"), "\(outcome)")
    }
  }

  /// `setpriv`, to run the tool as nobody.
  static let setpriv = onPath("setpriv")
  static let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]

  @Test(
    .enabled(if: isRoot, "needs root to create an object that nobody may not use"),
    .enabled(if: setpriv != nil, "needs setpriv (util-linux) to run sysvipc as nobody"))
  func permissionFailuresExitWith1() async throws {
    let setpriv = try #require(Self.setpriv)
    let who = try await LaunchedProcess.run(setpriv, Self.asNobody + ["/usr/bin/id", "-u"])
    try #require(who.output == "65534\n", "setpriv really drops privileges: \(who)")

    let semaphore = try makeSemaphore(initialValue: 1, mode: 0o600)
    defer { try? semaphore.remove() }
    let refused = try await LaunchedProcess.run(
      setpriv, Self.asNobody + [builtProduct("sysvipc"), "acquire", String(semaphore.id)])
    #expect(refused.status == 1, "\(refused)")
    #expect(refused.errors.contains("permission denied"), "\(refused)")
    #expect(try semaphore.value == 1)
    // Listing needs no permission (SEM_STAT_ANY), as with ipcs.
    let listed = try await LaunchedProcess.run(
      setpriv, Self.asNobody + [builtProduct("sysvipc"), "list", "--kind", "sem"])
    #expect(listed.status == 0, "\(listed)")
    #expect(listed.output.contains(" \(semaphore.id) "), "\(listed)")
  }

  @Test(.timingSensitive) func demoTalksAndRemovesWhatItCreated() async throws {
    let outcome = try await sysvipc("demo", "--iterations", "25")
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.output.contains("Mrs. Conclusion: round 25"), "\(outcome)")
    #expect(outcome.output.contains("Mrs. Premise: round 25"), "\(outcome)")
    #expect(outcome.output.contains("25 rounds, 51 messages"), "\(outcome)")
    #expect(outcome.output.contains("49 checked, none corrupted"), "\(outcome)")
    // "Removed shared memory M and semaphore S (key K)."
    let last = try #require(outcome.output.split(separator: "\n").last)
    let numbers = last.split(whereSeparator: { !$0.isNumber }).compactMap { Int32($0) }
    try #require(numbers.count >= 2, "\(last)")
    #expect(throws: IPCError.self) { try IPCSystem.object(.sharedMemory, id: numbers[0]) }
    #expect(throws: IPCError.self) { try IPCSystem.object(.semaphore, id: numbers[1]) }
  }

  @Test(.timingSensitive, arguments: [SIGINT, SIGTERM])
  func demoInterruptedRemovesWhatItCreated(_ signal: Int32) async throws {
    let demo = try LaunchedProcess(
      builtProduct("sysvipc"), ["demo", "--iterations", "100000000", "--quiet"])
    // The premise's segment names it as creator; the semaphore has the same key.
    var segment: IPCObjectInfo?
    try await waitUntil("the demo created its segment") {
      segment = try IPCSystem.objects(of: .sharedMemory).first { $0.creatorPID == demo.pid }
      return segment != nil
    }
    let key = try #require(segment?.key)
    defer { removeObjects(withKey: key) }
    try await waitUntil("the second process attached") {
      try IPCSystem.object(.sharedMemory, id: segment!.id).attachCount == 2
    }
    #expect(try objects(withKey: key).count == 2)
    demo.signal(signal)
    let outcome = try await demo.outcome()
    #expect(outcome.status == 128 + signal, "\(outcome)")
    #expect(outcome.errors.contains("removed 2 object(s)"), "\(outcome)")
    #expect(try objects(withKey: key).isEmpty, "the demo removed both objects")
  }
}

@Suite("sysvipc: message queues from the shell")
struct CLIMessageQueueTests {
  @Test func sendAndReceiveTypedMessages() async throws {
    let created = try await sysvipc("create", "mq", "--max-bytes", "1000")
    #expect(created.status == 0, "\(created)")
    let id = try #require(Int32(created.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    defer { try? MessageQueue.remove(id: id) }
    #expect(try MessageQueue(id: id).maxSize == 1000)

    #expect(try await sysvipc("send", String(id), "first", "--type", "3").status == 0)
    #expect(try await sysvipc("send", String(id), "second", "--type", "7").status == 0)
    let info = try IPCSystem.object(.messageQueue, id: id)
    #expect(info.messageCount == 2 && info.messageBytes == 11)

    let seventh = try await sysvipc("receive", String(id), "--type", "7", "--show-type")
    #expect(seventh.status == 0 && seventh.output == "7 second\n", "\(seventh)")
    let any = try await sysvipc("receive", String(id), "--raw")
    #expect(any.status == 0 && any.output == "first", "\(any)")

    let empty = try await sysvipc("receive", String(id), "--nowait")
    #expect(empty.status == 3, "\(empty)")
    let start = ContinuousClock.now
    let timedOut = try await sysvipc("receive", String(id), "--timeout", "0.3")
    #expect(timedOut.status == 3, "\(timedOut)")
    #expect(ContinuousClock.now - start >= .milliseconds(300))

    // A full queue: --nowait and --timeout give up with status 3, and nothing is sent.
    let big = String(repeating: "x", count: 600)
    #expect(try await sysvipc("send", String(id), big).status == 0)
    let full = try await sysvipc("send", String(id), big, "--nowait")
    #expect(full.status == 3, "\(full)")
    let fullTimeout = try await sysvipc("send", String(id), big, "--timeout", "0.2")
    #expect(fullTimeout.status == 3, "\(fullTimeout)")
    #expect(try IPCSystem.object(.messageQueue, id: id).messageCount == 1)

    let byKey = try await sysvipc("receive", "--key", try MessageQueue(id: id).key.description)
    #expect(byKey.output == big + "\n")
    #expect(try await sysvipc("remove", "mq", String(id)).status == 0)
    #expect(throws: IPCError.self) { try IPCSystem.object(.messageQueue, id: id) }
  }

  @Test func receiveWaitsForASender() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let receiver = try LaunchedProcess(builtProduct("sysvipc"), ["receive", String(queue.id)])
    // The receiver waits in the kernel's msgrcv until a message comes.
    try await waitUntil("sysvipc waits in msgrcv") {
      let channel = try? String(contentsOfFile: "/proc/\(receiver.pid)/wchan", encoding: .utf8)
      return channel?.contains("msgrcv") == true
    }
    try await queue.send("from Swift", type: 2)
    let outcome = try await receiver.outcome()
    #expect(outcome.status == 0 && outcome.output == "from Swift\n", "\(outcome)")
  }
}
