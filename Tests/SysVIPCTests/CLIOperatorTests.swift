// Issue 14: stale objects (library and tool), the list filters and columns, limits with usage,
// summary, size suffixes, `remove --all`. Every test acts on and asserts about its own objects
// only (found by key), or runs in a private IPC namespace (`unshare --ipc`) where it may
// remove everything.
import CommandLineValues
import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A `stale-user` helper: it created a semaphore, a segment (kept attached) and a queue at
/// one key, used each, and waits.
struct StaleUser {
  let process: HelperProcess
  let key: IPCKey
  let ids: [IPCObjectKind: Int32]

  init() async throws {
    process = try HelperProcess(["stale-user"])
    try await process.waitForLine("ready", "yes")
    key = IPCKey(rawValue: try #require(Int32(process.value("key") ?? "")))
    ids = [
      .semaphore: try #require(Int32(process.value("sem") ?? "")),
      .sharedMemory: try #require(Int32(process.value("shm") ?? "")),
      .messageQueue: try #require(Int32(process.value("mq") ?? "")),
    ]
  }

  /// Its objects as the system lists them now.
  func objects() throws -> [IPCObjectInfo] { try IPCSystem.objects().filter { $0.key == key } }

  func removeAll() { removeObjects(withKey: key) }
}

@Suite("sysvipc and IPCSystem: stale objects", .serialized)
struct StaleObjectTests {
  /// The library's rule: the objects of a SIGKILLed process are stale once the age has passed;
  /// those of a live one never are.
  @Test func aKilledProcessesObjectsAreStaleALiveOnesNever() async throws {
    let dead = try await StaleUser()
    defer { dead.removeAll() }
    let live = try await StaleUser()
    defer { live.removeAll() }
    defer { Task { await live.process.terminate() } }
    await dead.process.terminate()

    // Just killed: every user is gone, but an hour has not passed.
    for object in try dead.objects() {
      let answer = IPCSystem.staleness(of: object, olderThan: .seconds(3600))
      #expect(!answer.isStale, "\(object.kind): \(answer.reason)")
      #expect(answer.reason.contains("less than 1h"), "\(answer.reason)")
      #expect(answer.processIDs == [dead.process.pid], "\(object.kind): \(answer)")
    }
    // Once a second has passed (the kernel's times are in seconds), all three are stale.
    try await waitUntil("the killed process's objects are stale") {
      try IPCSystem.staleObjects(olderThan: .seconds(1)).filter { $0.key == dead.key }.count == 3
    }
    for object in try dead.objects() {
      let answer = IPCSystem.staleness(of: object, olderThan: .seconds(1))
      #expect(answer.isStale)
      #expect(answer.reason.contains("gone (pid \(dead.process.pid))"), "\(answer.reason)")
    }
    // The live process's objects: never, whatever the age.
    let stale = try IPCSystem.staleObjects(olderThan: .zero)
    #expect(!stale.contains { $0.key == live.key })
    let reasons = try live.objects().map {
      ($0.kind, IPCSystem.staleness(of: $0, olderThan: .zero).reason)
    }
    #expect(reasons.count == 3)
    for (kind, reason) in reasons {
      let expected = kind == .sharedMemory ? "attached 1 time" : "pid \(live.process.pid)"
      #expect(reason.contains(expected), "\(kind): \(reason)")
    }
  }

  @Test func aSemaphoreWithAWaiterIsNotStale() async throws {
    let semaphore = try makeSemaphore(initialValue: 0)
    defer { try? semaphore.remove() }
    let waiter = try HelperProcess(["sem-acquire", String(semaphore.id)])
    defer { Task { await waiter.terminate() } }
    try await waitUntil("a waiter") { try semaphore.waitingForNonzero == 1 }
    let info = try IPCSystem.object(.semaphore, id: semaphore.id)
    let answer = IPCSystem.staleness(of: info, olderThan: .zero)
    #expect(!answer.isStale)
    #expect(answer.reason.contains("wait on semaphore 0"), "\(answer.reason)")
  }

  /// The tool: `list --stale` and `remove --stale`, restricted by --key to the test's objects.
  @Test func listAndRemoveStaleFromTheShell() async throws {
    let dead = try await StaleUser()
    defer { dead.removeAll() }
    let live = try await StaleUser()
    defer { live.removeAll() }
    defer { Task { await live.process.terminate() } }
    await dead.process.terminate()
    let deadKey = dead.key.description
    let liveKey = live.key.description

    let young = try await sysvipc("list", "--stale", "--older-than", "1h", "--key", deadKey)
    #expect(young.status == 0, "\(young)")
    #expect(young.output.split(separator: "\n").count == 1, "only the header: \(young)")

    var listed: [[String: Any]] = []
    try await waitUntil("list --stale shows the killed process's objects") {
      let outcome = try runBlocking(
        "list", "--stale", "--older-than", "1s", "--key", deadKey, "--json")
      let report = try JSONSerialization.jsonObject(with: Data(outcome.utf8)) as? [String: Any]
      listed = report?["objects"] as? [[String: Any]] ?? []
      return listed.count == 3
    }
    #expect(
      Set(listed.compactMap { $0["kind"] as? String }) == [
        "semaphore", "sharedMemory", "messageQueue",
      ])
    for entry in listed {
      let stale = try #require(entry["stale"] as? [String: Any])
      #expect(stale["processIDs"] as? [Int] == [Int(dead.process.pid)], "\(entry)")
      #expect((stale["idleSeconds"] as? Int ?? -1) >= 1, "\(entry)")
    }
    let table = try await sysvipc("list", "--stale", "--older-than", "1s", "--key", deadKey)
    #expect(table.output.contains("WHY"), "\(table)")
    #expect(table.output.contains("gone (pid \(dead.process.pid))"), "\(table)")

    // The live process's objects are never listed, even with an age of 0.
    let liveList = try await sysvipc(
      "list", "--stale", "--older-than", "0s", "--key", liveKey, "--json")
    let liveReport = try #require(try json(liveList) as? [String: Any])
    #expect((liveReport["objects"] as? [Any])?.isEmpty == true, "\(liveList)")

    let dry = try await sysvipc(
      "remove", "--stale", "--older-than", "1s", "--key", deadKey, "--dry-run")
    #expect(dry.status == 0, "\(dry)")
    let dryLines = dry.output.split(separator: "\n")
    #expect(dryLines.count == 3 && dryLines.allSatisfy { $0.hasPrefix("would remove ") }, "\(dry)")
    #expect(try dead.objects().count == 3, "--dry-run removes nothing")

    let keep = try await sysvipc("remove", "--stale", "--older-than", "0s", "--key", liveKey)
    #expect(keep.status == 0 && keep.output.isEmpty, "\(keep)")
    #expect(try live.objects().count == 3)

    let removed = try await sysvipc("remove", "--stale", "--older-than", "1s", "--key", deadKey)
    #expect(removed.status == 0, "\(removed)")
    let lines = removed.output.split(separator: "\n")
    #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("removed ") }, "\(removed)")
    for (kind, id) in dead.ids {
      #expect(lines.contains { $0.contains("\(kind.name) \(id) ") }, "\(kind) \(id): \(removed)")
    }
    #expect(try dead.objects().isEmpty)
  }
}

/// Runs `sysvipc` to its end from a synchronous condition (for `waitUntil`): its output.
func runBlocking(_ arguments: String...) throws -> String {
  let path = FileManager.default.temporaryDirectory
    .appendingPathComponent("sysvipc-blocking-\(UUID().uuidString)").path
  defer { try? FileManager.default.removeItem(atPath: path) }
  let pid = try spawnCleanly(
    [builtProduct("sysvipc")] + arguments, output: path, error: "/dev/null")
  var status: Int32 = 0
  while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
  return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

@Suite("sysvipc: list, limits, summary, create and remove as an operator's tool")
struct CLIOperatorTests {
  @Test func listFiltersAndColumns() async throws {
    let semaphore = try makeSemaphore(initialValue: 1)
    defer { try? semaphore.remove() }
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 5000)
    defer { try? memory.remove() }
    let semKey = semaphore.key.description
    let shmKey = memory.key.description

    // --key (repeatable) and --kind (repeatable).
    let both = try await sysvipc("list", "--key", semKey, "--key", shmKey, "--no-headings")
    let rows = both.output.split(separator: "\n")
    #expect(rows.count == 2, "\(both)")
    #expect(!both.output.contains("KIND"), "--no-headings")
    let onlyShm = try await sysvipc(
      "list", "--key", semKey, "--key", shmKey, "--kind", "shm", "--no-headings")
    #expect(onlyShm.output.split(separator: "\n").count == 1 && onlyShm.output.hasPrefix("shm "))
    let semAndShm = try await sysvipc(
      "list", "--key", semKey, "--key", shmKey, "-k", "sem", "-k", "shm", "--no-headings")
    #expect(semAndShm.output.split(separator: "\n").count == 2, "\(semAndShm)")

    // --mine and --owner: these are root's (the tests' user's) objects.
    let me = String(geteuid())
    for filter in [["--mine"], ["--owner", me], ["--owner", userNameOf(geteuid())]] {
      let outcome = try await LaunchedProcess.run(
        builtProduct("sysvipc"), ["list", "--key", semKey] + filter + ["--no-headings"])
      #expect(outcome.output.split(separator: "\n").count == 1, "\(filter): \(outcome)")
    }
    let other = try await sysvipc(
      "list", "--key", semKey, "--owner", String(geteuid() + 1), "--no-headings")
    #expect(other.status == 0 && other.output.isEmpty, "\(other)")
    let nobody = try await sysvipc("list", "--owner", "no-such-user-\(UUID().uuidString.prefix(8))")
    #expect(nobody.status == 2, "\(nobody)")

    // --columns, --bytes, human sizes, --raw.
    let columns = try await sysvipc(
      "list", "--key", shmKey, "--columns", "id,cuid,cgid,cpid,used,ctime,atime,dtime")
    let lines = columns.output.split(separator: "\n")
    #expect(
      lines.first?.split(separator: " ", omittingEmptySubsequences: true) == [
        "ID", "CUID", "CGID", "CPID", "USED", "CTIME", "ATIME", "DTIME",
      ], "\(columns)")
    let cells = try #require(lines.last).split(separator: " ", omittingEmptySubsequences: true)
    #expect(cells[0] == Substring(String(memory.id)))
    #expect(cells[1] == Substring(me))
    #expect(cells[3] == Substring(String(getpid())))
    #expect(cells[4] == "4.8" && cells[5] == "KiB", "5000 bytes, human: \(columns)")
    #expect(cells[6].hasSuffix("Z") && cells[7].hasSuffix("Z"), "ISO 8601 times: \(columns)")
    let lastPID = try memory.status().lastPID
    #expect(
      cells[8] == "-",
      "never detached: \(columns); last attach or detach by \(processDescription(lastPID))")
    let exact = try await sysvipc(
      "list", "--key", shmKey, "--columns", "used,size", "--bytes", "--raw", "--no-headings")
    #expect(exact.output == "5000\\x20B 5000\\x20B\n", "\(exact)")
    let raw = try await sysvipc("list", "--key", semKey, "--raw")
    let rawLines = raw.output.split(separator: "\n")
    #expect(rawLines.first == "KIND KEY ID OWNER MODE SIZE ATTACH CPID LPID STATUS", "\(raw)")
    #expect(rawLines.last?.split(separator: " ").count == 10, "one cell per column: \(raw)")
    #expect(rawLines.last?.hasSuffix(" -") == true, "an empty STATUS is '-': \(raw)")
    let unknown = try await sysvipc("list", "--columns", "id,bogus")
    #expect(unknown.status == 2 && unknown.errors.contains("bogus"), "\(unknown)")

    // --json keeps every field, whatever --columns, and states its schema.
    let listed = try await sysvipc("list", "--key", shmKey, "--columns", "id", "--json")
    let report = try #require(try json(listed) as? [String: Any])
    #expect(report["schemaVersion"] as? Int == 1)
    let entry = try #require((report["objects"] as? [[String: Any]])?.first)
    #expect(entry["size"] as? Int == 5000)
    #expect(entry["creatorPID"] as? Int == Int(getpid()))
    #expect(entry["cuid"] as? Int == Int(geteuid()))
    #expect(entry["lastActivityTime"] is String)
  }

  @Test func createShmTakesIpcmksSizeSuffixes() async throws {
    for (text, bytes) in [
      ("4K", 4096), ("1KiB", 1024), ("1KB", 1000), ("1.5K", 1536), ("2k", 2048),
    ] {
      let created = try await sysvipc("create", "shm", "--size", text)
      #expect(created.status == 0, "\(text): \(created)")
      let id = try #require(Int32(created.output.trimmingCharacters(in: .whitespacesAndNewlines)))
      defer { try? SharedMemory.remove(id: id) }
      #expect(try IPCSystem.object(.sharedMemory, id: id).size == bytes, "\(text)")
    }
    for bad in ["4Q", "K", "1.5", "-1", "99999999E"] {
      let refused = try await sysvipc("create", "shm", "--size", bad)
      #expect(refused.status == 2, "\(bad): \(refused)")
    }
  }

  /// limits, summary and `remove --all` in a private IPC namespace: exact counts, and removing
  /// everything of a kind harms nobody.
  @Test(.enabled(if: canUnshareIPC, "needs root and unshare --ipc for a private IPC namespace"))
  func limitsSummaryAndRemoveAllInAPrivateNamespace() async throws {
    let tool = builtProduct("sysvipc")
    let script = """
      set -e
      "$0" create sem --count 3 >/dev/null
      "$0" create sem >/dev/null
      "$0" create shm --size 5000 >/dev/null
      q=$("$0" create mq)
      "$0" send "$q" hello
      "$0" summary --json
      echo ---
      "$0" limits --json
      echo ---
      "$0" summary
      echo ---
      "$0" remove --all --kind sem --dry-run
      echo ---
      "$0" remove --all --kind sem
      echo ---
      "$0" list --no-headings --columns kind
      """
    let outcome = try await LaunchedProcess.run(
      "/usr/bin/unshare", ["--ipc", "/bin/sh", "-c", script, tool])
    #expect(outcome.status == 0, "\(outcome)")
    let parts = outcome.output.components(separatedBy: "---\n")
    try #require(parts.count == 6, "\(outcome)")

    let summary = try #require(
      try JSONSerialization.jsonObject(with: Data(parts[0].utf8)) as? [String: Any])
    #expect(summary["schemaVersion"] as? Int == 1)
    let usage = try #require(summary["usage"] as? [String: Int])
    let pages = (5000 + Int(getpagesize()) - 1) / Int(getpagesize())
    #expect(
      usage == [
        "semaphoreSets": 2, "semaphores": 4, "sharedMemorySegments": 1,
        "sharedMemoryPages": pages, "sharedMemoryBytes": 5000, "messageQueues": 1,
        "messages": 1, "messageBytes": 5,
      ], "\(parts[0])")

    let limits = try #require(
      try JSONSerialization.jsonObject(with: Data(parts[1].utf8)) as? [String: Any])
    #expect(limits["schemaVersion"] as? Int == 1)
    let values = try #require(limits["limits"] as? [String: Any])
    #expect(values.count == 12)
    let resources = try #require(limits["resources"] as? [[String: Any]])
    let used = Dictionary(
      uniqueKeysWithValues: resources.compactMap { row in
        (row["used"] as? Int).map {
          (row["name"] as! String, ($0, row["limit"] as? Int, row["percent"] as? Double))
        }
      })
    #expect(used["semmni"]?.0 == 2 && used["semmns"]?.0 == 4, "\(used)")
    #expect(used["shmmni"]?.0 == 1 && used["shmall"]?.0 == pages && used["msgmni"]?.0 == 1)
    #expect(used["msgmax"] == nil, "a limit that counts nothing has no usage")
    if let (count, limit, percent) = used["semmni"], let limit, let percent {
      #expect(abs(percent - Double(count) * 100 / Double(limit)) < 1e-9)
    } else {
      Issue.record("semmni has no limit or percentage: \(used)")
    }

    #expect(parts[2].contains("4 semaphores") && parts[2].contains("4.8 KiB"), "\(parts[2])")
    #expect(parts[2].contains("1 message, 5 B"), "\(parts[2])")
    let dry = parts[3].split(separator: "\n")
    #expect(
      dry.count == 2 && dry.allSatisfy { $0.hasPrefix("would remove semaphore ") }, "\(parts[3])")
    let removed = parts[4].split(separator: "\n")
    #expect(
      removed.count == 2 && removed.allSatisfy { $0.hasPrefix("removed semaphore ") }, "\(parts[4])"
    )
    #expect(parts[5].split(separator: "\n").sorted() == ["mq", "shm"], "\(parts[5])")
  }

  @Test(arguments: [
    ["remove", "--all"], ["remove", "--all", "--stale"], ["list", "--older-than", "1h"],
    ["remove", "sem", "--mine", "1"], ["remove", "--stale", "--older-than", "soon"],
    ["remove", "--stale", "--all", "--kind", "sem"],
  ])
  func operatorUsageErrorsExitWith2(_ arguments: [String]) async throws {
    let outcome = try await LaunchedProcess.run(builtProduct("sysvipc"), arguments)
    #expect(outcome.status == 2, "\(outcome)")
    #expect(outcome.output.isEmpty, "nothing was listed or removed: \(outcome)")
  }
}

/// The user name of `uid`, as `getpwuid` gives it.
func userNameOf(_ uid: uid_t) -> String {
  guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return String(uid) }
  return String(cString: name)
}

@Suite("CommandLineValues: the tool's value parsers")
struct CommandLineValueTests {
  @Test func sizes() throws {
    let good: [(String, Int)] = [
      ("0", 0), ("4096", 4096), ("4K", 4096), ("4k", 4096), ("4KiB", 4096), ("4kib", 4096),
      ("4KB", 4000), ("1M", 1 << 20), ("1MB", 1_000_000), ("1G", 1 << 30), ("1T", 1 << 40),
      ("1.5K", 1536), ("0.5KB", 500), ("1.0000001K", 1024), ("7E", 7 << 60),
    ]
    for (text, value) in good { #expect(try parseSize(text) == value, "\(text)") }
    for text in [
      "", "K", "1.5", "1.K", ".5K", "-1", "+1", "1Q", "1KX", "1KiBB", "8E", "9223372036854775808",
      "1Z", " 1", "1 K", "0x10",
    ] {
      #expect(throws: ValueParseError.self, "\(text)") { try parseSize(text) }
    }
  }

  @Test func durations() throws {
    let good: [(String, Int64)] = [
      ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86_400), ("1h30m", 5400), ("45", 45),
      ("0s", 0),
    ]
    for (text, seconds) in good { #expect(try parseDuration(text) == .seconds(seconds), "\(text)") }
    for text in ["", "s", "1x", "1h30", "-1s", "1.5h", "99999999999d", "1 h"] {
      #expect(throws: ValueParseError.self, "\(text)") { try parseDuration(text) }
    }
  }

  @Test func keysModesAndSeconds() throws {
    #expect(try parseKey("42") == 42)
    #expect(try parseKey("-7") == -7)
    #expect(try parseKey("0x2A") == 42)
    #expect(try parseKey("0xffffffff") == -1)
    for text in ["", "0x", "0x123456789", "4294967296", "forty", "0xg"] {
      #expect(throws: ValueParseError.self, "\(text)") { try parseKey(text) }
    }
    #expect(try parseMode("600") == 0o600)
    #expect(try parseMode("0o640") == 0o640)
    for text in ["", "0o", "999", "1000", "8", "rw"] {
      #expect(throws: ValueParseError.self, "\(text)") { try parseMode(text) }
    }
    #expect(try parseSeconds("0.25") == .milliseconds(250))
    for text in ["", "-1", "nan", "inf", "1e300", "x"] {
      #expect(throws: ValueParseError.self, "\(text)") { try parseSeconds(text) }
    }
    let error = try #require(throws: ValueParseError.self) { try parseSize("4Q") }
    #expect(error.description.contains("unknown suffix"), "\(error)")
  }
}

@Suite("sysvipc: remove goes on past what it may not remove")
struct CLIRemovePermissionTests {
  @Test(
    .enabled(if: isRoot, "needs root to give one semaphore to nobody and keep one"),
    .enabled(if: CLITests.setpriv != nil, "needs setpriv (util-linux) to run sysvipc as nobody"))
  func removeReportsEachFailureAndGoesOn() async throws {
    let setpriv = try #require(CLITests.setpriv)
    let who = try await LaunchedProcess.run(setpriv, CLITests.asNobody + ["/usr/bin/id", "-u"])
    try #require(who.output == "65534\n", "setpriv really drops privileges: \(who)")
    let roots = try makeSemaphore()
    defer { try? roots.remove() }
    let nobodys = try makeSemaphore()
    defer { try? nobodys.remove() }
    try nobodys.setOwner(uid: 65534, gid: 65534)
    func asNobody(_ arguments: [String]) async throws -> LaunchedProcess.Outcome {
      try await LaunchedProcess.run(
        setpriv, CLITests.asNobody + [builtProduct("sysvipc")] + arguments)
    }
    let keys = ["--key", roots.key.description, "--key", nobodys.key.description]

    // --mine as nobody: only the semaphore nobody owns.
    let mine = try await asNobody(["list", "--mine", "--no-headings", "--columns", "id"] + keys)
    #expect(mine.output == "\(nobodys.id)\n", "\(mine)")

    // Root's semaphore first: its failure is reported, and nobody's is still removed.
    let removed = try await asNobody(["remove", "sem", String(roots.id), String(nobodys.id)])
    #expect(removed.status == 1, "\(removed)")
    #expect(removed.errors.contains("semaphore \(roots.id)"), "\(removed)")
    #expect(removed.errors.contains("not permitted"), "IPC_RMID: EPERM: \(removed)")
    #expect(removed.output == "removed semaphore \(nobodys.id)\n", "\(removed)")
    #expect(try IPCSystem.object(.semaphore, id: roots.id).id == roots.id, "root's is kept")
    #expect(throws: IPCError.self) { try IPCSystem.object(.semaphore, id: nobodys.id) }

    // The same through --all, restricted to this test's keys.
    let again = try await asNobody(["remove", "--all", "--kind", "sem"] + keys)
    #expect(again.status == 1, "\(again)")
    #expect(again.output.isEmpty && again.errors.contains("not permitted"), "\(again)")
    #expect(try IPCSystem.object(.semaphore, id: roots.id).id == roots.id)
  }
}
