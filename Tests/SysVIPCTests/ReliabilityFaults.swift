import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Faults: removal under a waiter, signals, a full queue, a poison message, constructors that
/// fail part-way (issue 7). The suite is declared in ReliabilityTests.swift.
extension ReliabilityFaultTests {
  // MARK: Removal

  /// A helper waits in acquire, in receive, or in send on a full queue; the object is removed.
  /// The helper's wait ends with `.existential`, and so does every later call it makes on the
  /// id (16 calls per kind: `rel-wait` lists them).
  @Test(arguments: [
    ("semaphore", "acquire", "semtimedop"), ("message-queue", "receive", "msgrcv"),
    ("message-queue", "send", "msgsnd"),
  ])
  func removalUnderAWaiterIsExistentialThereAndForEveryLaterCall(
    kind: String, operation: String, channel: String
  ) async throws {
    let id: Int32
    let remove: () throws -> Void
    if kind == "semaphore" {
      let semaphore = try makeSemaphore()
      (id, remove) = (semaphore.id, { try semaphore.remove() })
    } else {
      let queue = try makeMessageQueue()
      if operation == "send" {
        try queue.setMaxSize(10)
        try await queue.send(messagePattern(10))
      }
      (id, remove) = (queue.id, { try queue.remove() })
    }
    defer { try? remove() }
    let helper = try HelperProcess(["rel-wait", kind, operation, String(id)])
    try await waitUntilBlocked(helper, in: channel)
    try remove()
    let outcome = try await helper.outcome()
    #expect(outcome.errorKind == "existential", "\(outcome.output)")
    #expect(outcome.value("waitError") == "existential", "\(outcome.output)")
    let later = afterRemovalResults(outcome.output)
    #expect(later.count == 16, "\(outcome.output)")
    for (call, result) in later.sorted(by: { $0.key < $1.key }) {
      #expect(result == "existential", "\(kind) \(call) after removal: \(result)")
    }
  }

  /// Every call on a removed set, segment or queue, in this process, is `.existential`
  /// (the semaphore's table is everyCallOnARemovedSemaphoreIsExistential). A removed segment
  /// lives until its last detach: the calls are made after that.
  @Test(arguments: ["set", "shared-memory", "message-queue"])
  func everyCallOnARemovedObjectIsExistential(_ kind: String) throws {
    var calls: [(String, () throws -> Void)] = []
    switch kind {
    case "set":
      let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
      try set.remove()
      calls = [
        ("values", { _ = try set.values() }), ("setValues", { try set.setValues([1, 1, 1]) }),
        ("value(at:)", { _ = try set.value(at: 1) }), ("setValue", { try set.setValue(1, at: 0) }),
        ("apply", { try set.apply([.init(index: 0, delta: 1)]) }),
        ("applyTimed", { try set.apply([.init(index: 0, delta: -1)], timeout: .seconds(1)) }),
        ("waitingForZero", { _ = try set.waitingForZero(at: 0) }),
        ("lastPID", { _ = try set.lastPID(at: 0) }), ("status", { _ = try set.status() }),
        ("mode", { _ = try set.mode }), ("setMode", { try set.setMode(0o600) }),
        ("setOwner", { try set.setOwner(uid: 0) }),
        ("openByID", { _ = try SemaphoreSet(id: set.id) }),
        ("openByKey", { _ = try SemaphoreSet(key: set.key, count: 0) }),
        ("remove", { try set.remove() }), ("removeByID", { try SemaphoreSet.remove(id: set.id) }),
      ]
    case "shared-memory":
      let memory = try makeSharedMemory(size: 64)
      try memory.remove()
      try memory.detach()
      calls = [
        ("attach", { try memory.attach() }),
        ("attachReadOnly", { try memory.attach(flags: .readOnly) }),
        ("attachByID", { _ = try SharedMemory.attach(id: memory.id) }),
        ("openByKey", { _ = try SharedMemory(key: memory.key) }),
        ("status", { _ = try memory.status() }),
        ("numberAttached", { _ = try memory.numberAttached }),
        ("lastPID", { _ = try memory.lastPID }), ("mode", { _ = try memory.mode }),
        ("setMode", { try memory.setMode(0o600) }), ("setOwner", { try memory.setOwner(uid: 0) }),
        ("remove", { try memory.remove() }),
        ("removeByID", { try SharedMemory.remove(id: memory.id) }),
      ]
      // Reading and writing need a mapping, which this object no longer has.
      expectIPCError(.notAttached) { try memory.read(count: 1) }
      expectIPCError(.notAttached) { try memory.write("x") }
    default:
      let queue = try makeMessageQueue()
      try queue.send("left behind")
      try queue.remove()
      calls = [
        ("send", { try queue.send("x") }),
        ("sendNonBlocking", { try queue.send("x", block: false) }),
        ("sendTimed", { try queue.send("x", timeout: .seconds(1)) }),
        ("receive", { _ = try queue.receive() }),
        ("receiveNonBlocking", { _ = try queue.receive(block: false) }),
        ("receiveTimed", { _ = try queue.receive(timeout: .seconds(1)) }),
        (
          "receiveInto",
          {
            var buffer = [UInt8](repeating: 0, count: 32)
            _ = try buffer.withUnsafeMutableBytes { try queue.receive(into: $0) }
          }
        ),
        ("status", { _ = try queue.status() }), ("maxSize", { _ = try queue.maxSize }),
        ("setMaxSize", { try queue.setMaxSize(100) }), ("mode", { _ = try queue.mode }),
        ("setMode", { try queue.setMode(0o600) }), ("setOwner", { try queue.setOwner(uid: 0) }),
        ("openByID", { _ = try MessageQueue(id: queue.id) }),
        ("openByKey", { _ = try MessageQueue(key: queue.key) }),
        ("remove", { try queue.remove() }),
        ("removeByID", { try MessageQueue.remove(id: queue.id) }),
      ]
    }
    for (name, call) in calls {
      let error = expectIPCError(.existential) { try call() }
      #expect(error != nil, "\(kind) \(name)")
    }
  }

  /// The async forms, on a removed semaphore and queue: `.existential` too, at once.
  @Test func asyncCallsOnRemovedObjectsAreExistential() async throws {
    let semaphore = try makeSemaphore()
    let queue = try makeMessageQueue()
    try semaphore.remove()
    try queue.remove()
    await expectAsyncIPCError(.existential) { try await semaphore.acquire() }
    await expectAsyncIPCError(.existential) { try await semaphore.waitForZero() }
    await expectAsyncIPCError(.existential) { _ = try await queue.receive() }
    await expectAsyncIPCError(.existential) { try await queue.send("x") }
  }

  // MARK: Signals

  /// SIGUSR1 (handled, with and without SA_RESTART) and SIGSTOP/SIGCONT while a helper waits
  /// without a timeout in receive, or in send on a full queue: no error surfaces, the helper
  /// goes back to waiting each time, and completes normally.
  @Test(arguments: ["receive", "send"], ["--sigusr1", "--sigusr1-restart"])
  func signalsDuringAQueueWaitDoNotSurface(_ operation: String, _ handler: String) async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let channel = operation == "receive" ? "msgrcv" : "msgsnd"
    if operation == "send" {
      try queue.setMaxSize(20)
      try await queue.send(messagePattern(20))
    }
    let command =
      operation == "receive"
      ? ["mq-receive", String(queue.id)] : ["mq-send", String(queue.id), "after signals"]
    let helper = try HelperProcess([handler] + command)
    try await waitUntilBlocked(helper, in: channel)
    for _ in 0..<3 {
      helper.signal(SIGUSR1)
      try await Task.sleep(for: .milliseconds(20))
      try await waitUntilBlocked(helper, in: channel)
    }
    helper.signal(SIGSTOP)
    try await waitUntil("the helper is stopped") { helper.state == "T" }
    helper.signal(SIGCONT)
    try await waitUntilBlocked(helper, in: channel)
    if operation == "receive" {
      try await queue.send("after signals", type: 3)
    } else {
      #expect(try await queue.receive().message == messagePattern(20))
    }
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(Int(outcome.value("signals") ?? "") == 3, "\(outcome.output)")
    if operation == "receive" {
      #expect(outcome.value("message") == "after signals")
    } else {
      #expect(try await queue.receive(block: false).message == Array("after signals".utf8))
    }
    #expect(try queue.currentMessages == 0)
  }

  /// A timed wait interrupted by SIGUSR1 every 150 ms and by SIGSTOP/SIGCONT for 100 ms still
  /// ends at its original deadline (2 s): a wait that restarted its timeout after each
  /// interruption would end near 3.8 s.
  @Test(
    .timingSensitive,
    arguments: [
      ("acquire", "--sigusr1"), ("acquire", "--sigusr1-restart"), ("receive", "--sigusr1"),
      ("receive", "--sigusr1-restart"),
      ("send", "--sigusr1"), ("send", "--sigusr1-restart"),
    ])
  func aTimedWaitKeepsItsDeadlineThroughSignalsAndStops(operation: String, handler: String)
    async throws
  {
    let semaphore = try makeSemaphore()
    defer { try? semaphore.remove() }
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(10)
    let command: [String]
    switch operation {
    case "acquire": command = ["sem-acquire", String(semaphore.id)]
    case "receive": command = ["mq-receive", String(queue.id)]
    default:
      try await queue.send(messagePattern(10))
      command = ["mq-send", String(queue.id), "late"]
    }
    let helper = try HelperProcess([handler] + command + ["--timeout", "2"])
    // Signal a helper that sleeps in the wait itself (its /proc state and wait channel), not
    // one that has only printed that it is about to wait. The signals come from a thread of
    // their own: a task that sends them may get its turn too late while ~340 tests start at
    // once on 2 cooperative threads (this test once saw 0 signals). Nothing reaps the helper
    // before that thread ends, so its pid cannot be reused under it.
    let call = ["acquire": "semtimedop", "receive": "msgrcv"][operation] ?? "msgsnd"
    let signaller = StartedThread { () -> Int in
      func alive() -> Bool { helper.state.map { $0 != "Z" } ?? false }
      func blocked() -> Bool {
        guard helper.value("waiting") == "yes", helper.state == "S" else { return false }
        return kernelWaitChannel(helper.pid).map { $0.contains(call) } ?? true
      }
      while !blocked() && alive() && helper.value("result") == nil { usleep(1000) }
      let clock = ContinuousClock()
      let start = clock.now
      var (sent, stopped) = (0, false)
      while alive() && helper.value("result") == nil && clock.now - start < .milliseconds(1800) {
        helper.signal(SIGUSR1)
        sent += 1
        usleep(150_000)
        if !stopped && clock.now - start > .milliseconds(900) {
          helper.signal(SIGSTOP)
          usleep(100_000)
          helper.signal(SIGCONT)
          stopped = true
        }
      }
      return sent
    }
    let sent = try await signaller.value
    #expect(sent >= 1, "signals sent while the helper waited")
    let outcome = try await helper.outcome()
    #expect(outcome.errorKind == "busy", "\(outcome.output)")
    #expect(outcome.output.contains("timed out"), "\(outcome.output)")
    let seconds = try #require(Double(outcome.value("elapsed") ?? ""))
    #expect(seconds >= 1.95, "\(outcome.output)")
    #expect(seconds < 3.5, "the deadline moved: \(outcome.output)")
    // Standard signals sent while the helper is not running merge into one: count at least one.
    #expect(Int(outcome.value("signals") ?? "0")! >= 1, "\(outcome.output)")
    reportFigure("timed \(operation) \(handler): deadline 2 s, ended after \(seconds) s")
    #expect(try semaphore.value == 0)
    #expect(try queue.currentMessages == (operation == "send" ? 1 : 0), "nothing sent late")
  }

  // MARK: A full queue, a poison message

  /// A full queue refuses a non-blocking (or zero-timeout) send with `.busy` and adds nothing;
  /// a helper blocked in send completes after exactly one receive, and every message is then
  /// there once, in order.
  @Test func aFullQueueRefusesNonBlockingSendsAndOneReceiveLetsABlockedSenderIn() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(100)
    for index in 0..<10 { try await queue.send(messagePattern(10, seed: index), type: index + 1) }
    let busy = expectIPCError(.busy) { try queue.send("x", block: false) }
    #expect(busy?.message.contains("would block") == true, "\(String(describing: busy))")
    expectIPCError(.busy) { try queue.send("x", timeout: .zero) }
    let helper = try HelperProcess(["mq-send", String(queue.id), "eleventh", "--type", "11"])
    try await waitUntilBlocked(helper, in: "msgsnd")
    #expect(try queue.currentMessages == 10, "the sender waits; nothing was added")
    let first = try await queue.receive(block: false)
    #expect(first.message == messagePattern(10, seed: 0) && first.type == 1)
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    for index in 1..<10 {
      #expect(try await queue.receive(block: false) == (messagePattern(10, seed: index), index + 1))
    }
    #expect(try await queue.receive(block: false) == (Array("eleventh".utf8), 11))
    #expect(try queue.currentMessages == 0)
  }

  /// A message longer than a receiver's buffer: the receiver gets a clear `.outOfRange` that
  /// says the message stays queued, again and again (nothing is lost, nothing gets past it),
  /// until a truncating receive takes it; the message behind it then arrives intact.
  @Test func aPoisonMessageIsAClearErrorUntilATruncatingReceiveClearsIt() async throws {
    let queue = try makeMessageQueue(maxMessageSize: 4096)
    defer { try? queue.remove() }
    let poison = String(repeating: "P", count: 200)
    try await queue.send(poison, type: 1)
    try await queue.send("behind it", type: 1)
    for _ in 0..<2 {
      let refused = try await HelperProcess.run(
        ["mq-receive", String(queue.id), "--max", "16", "--no-block"])
      #expect(refused.errorKind == "outOfRange", "\(refused.output)")
      #expect(refused.output.contains("stays queued"), "\(refused.output)")
      #expect(try queue.currentMessages == 2)
    }
    let cut = try await HelperProcess.run(
      ["mq-receive", String(queue.id), "--max", "16", "--truncate"])
    #expect(cut.ok, "\(cut.output)")
    #expect(cut.value("count") == "16")
    #expect(cut.value("message") == String(repeating: "P", count: 16))
    let next = try await HelperProcess.run(["mq-receive", String(queue.id), "--max", "16"])
    #expect(next.ok, "\(next.output)")
    #expect(next.value("message") == "behind it")
    #expect(try queue.currentMessages == 0)
  }

  // MARK: Constructors that fail part-way

  /// In a private IPC namespace: a segment created but not attachable (address space
  /// limit), a semaphore created but not initialisable (openOrCreate's semop beyond semopm),
  /// the semaphore and page limits (semmns, shmall), and constructors refused before any call.
  /// Each fails with a clear error and leaves no object; controls show the same calls succeed
  /// without the fault.
  @Test(
    .enabled(if: canUnshareIPC, "needs root and unshare --ipc for a private IPC namespace"),
    .disabled(
      if: underSanitizer,
      "a sanitizer's shadow memory leaves no VmSize to limit the address space by"))
  func constructorsThatFailPartWayLeaveNothingBehind() async throws {
    let outcome = try await HelperProcess.run(
      ["rel-ns-partial"], launcher: ["/usr/bin/unshare", "--ipc"])
    #expect(outcome.ok, "\(outcome.output)")
    func expectCase(
      _ name: String, _ kind: String, errno: Int32? = nil, listed: Int = 0, mentions: String? = nil,
      sourceLocation: SourceLocation = #_sourceLocation
    ) {
      #expect(outcome.value("\(name).kind") == kind, "\(name)", sourceLocation: sourceLocation)
      if let errno {
        #expect(
          outcome.value("\(name).errno") == "\(errno)", "\(name)", sourceLocation: sourceLocation)
      }
      #expect(
        outcome.value("\(name).listed") == "\(listed)", "\(name)", sourceLocation: sourceLocation)
      if let mentions {
        #expect(
          outcome.value("\(name).message")?.contains(mentions) == true,
          "\(name): \(outcome.value("\(name).message") ?? "no message")",
          sourceLocation: sourceLocation)
      }
    }
    expectCase("shmAttachControl", "none", listed: 1)
    expectCase("shmAttach", "system", errno: ENOMEM, mentions: "shmat")
    expectCase("openOrCreateControl", "none", listed: 1)
    expectCase("openOrCreateSemaphore", "outOfRange", errno: E2BIG)
    expectCase("openOrCreateSet", "outOfRange", errno: E2BIG)
    expectCase("semmns", "system", errno: ENOSPC, listed: 1, mentions: "limit")
    expectCase("shmall", "system", errno: ENOSPC, listed: 1, mentions: "limit")
    expectCase("semaphoreValue", "outOfRange", mentions: "32768")
    expectCase("semaphoreMode", "invalidArgument", mentions: "0o777")
    expectCase("setCountZero", "invalidArgument")
    expectCase("setCountAboveSemmsl", "invalidArgument", errno: EINVAL)
    expectCase("shmSizeZero", "invalidArgument", mentions: "size 0")
    expectCase("shmSizeHuge", "outOfRange")
    expectCase("queueMaxMessageSize", "invalidArgument", mentions: "maxMessageSize")
    expectCase("queueRandomKeyWithoutCreate", "invalidArgument", mentions: "createExclusive")
    #expect(outcome.value("cases") == "15")
    #expect(outcome.value("listedAtEnd") == "0")
  }
}

/// Asserts that an async `body` throws an `IPCError` of `kind`.
func expectAsyncIPCError(
  _ kind: IPCError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () async throws -> Void
) async {
  do {
    try await body()
    Issue.record(
      "expected IPCError.\(kind), but the call succeeded", sourceLocation: sourceLocation)
  } catch let error as IPCError {
    #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected IPCError.\(kind), got \(error)", sourceLocation: sourceLocation)
  }
}
