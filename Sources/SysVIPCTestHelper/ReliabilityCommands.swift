import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Fault and security probes of the reliability tests (issue 7):
///
/// rel-op KIND OP ID KEY     one operation on someone else's object, for the permission table.
///                           KIND: semaphore, shared-memory, message-queue. `open` opens by key
///                           asking for read and write; `remove` is the static remove(id:);
///                           the others open by key asking for no access (mode 0), print
///                           opened=yes, and then do OP, so that OP itself meets the check
///                           (shared memory cannot: it reads the segment's size when opening).
/// rel-wait KIND OP ID       wait in OP (semaphore acquire, message-queue receive or send) until
///                           the object is removed; then print waitError= and, for every later
///                           call on the id, after.NAME=KIND (or ok), and end with the error
/// rel-endless send ID [--async] [--max N]
///                           send an endless byte sequence through a handle with maxMessageSize
///                           N (default 2^40), with the address space limited to 2 MiB more
///                           than now: the sync and async forms must refuse it (outOfRange)
///                           after reading at most msgmax + 1 bytes, not run out of memory
/// rel-endless write ID      the same for a write into the segment ID: refused (past the end)
/// rel-ns-partial            in a fresh private IPC namespace: make constructors fail part-way
///                           and print, for each case, NAME.kind, NAME.errno and NAME.listed
///                           (the objects that exist afterwards)
func reliabilityCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "rel-op":
    let kind = args.next("kind")
    let operation = args.next("operation")
    try permissionProbe(kind: kind, operation: operation, id: args.int32("id"), key: args.key())
  case "rel-wait":
    let kind = args.next("kind")
    let operation = args.next("operation")
    try waitUntilRemoved(kind: kind, operation: operation, id: args.int32("id"))
  case "rel-ns-partial":
    try partialFailures()
  case "rel-endless":
    let target = args.next("send or write")
    let useAsync = args.flag("async")
    let maxMessageSize = args.option("max").flatMap(Int.init) ?? 1 << 40
    let id = args.int32("id")
    // Start the concurrency runtime's threads while their stacks can still be mapped.
    if useAsync { try runAsync {} }
    try withAddressSpaceLimit(headroom: 2 << 20) {
      report("sending", "\(target) \(useAsync ? "async" : "sync")")
      switch (target, useAsync) {
      case ("write", _):
        try SharedMemory.attach(id: id).write(endlessBytes())
      case (_, true):
        let queue = try MessageQueue(id: id, maxMessageSize: maxMessageSize)
        try runAsync { try await queue.send(endlessBytes()) }
      default:
        try MessageQueue(id: id, maxMessageSize: maxMessageSize).send(endlessBytes())
      }
    }
  default:
    fail("unknown command \(command)")
  }
}

// MARK: - Permissions

private func permissionProbe(kind: String, operation: String, id: Int32, key: IPCKey) throws {
  switch (kind, operation) {
  case ("semaphore", "open"): _ = try Semaphore(key: key, mode: 0o600)
  case ("semaphore", "remove"): try Semaphore.remove(id: id)
  case ("semaphore", _):
    var semaphore = try Semaphore(key: key, mode: 0)
    semaphore.block = false
    report("opened", "yes")
    switch operation {
    case "acquire": try semaphore.acquire()
    case "release": try semaphore.release()
    case "value": _ = try semaphore.value
    case "setValue": try semaphore.setValue(0)
    case "status": _ = try semaphore.status()
    case "setMode": try semaphore.setMode(0o666)
    case "setOwner": try semaphore.setOwner(uid: 65534, gid: 65534)
    default: fail("unknown operation \(operation)")
    }
  case ("shared-memory", "open"): _ = try SharedMemory(key: key, mode: 0o600)
  case ("shared-memory", "openReadOnly"): _ = try SharedMemory(key: key, mode: 0o400)
  case ("shared-memory", "remove"): try SharedMemory.remove(id: id)
  case ("shared-memory", "attach"): _ = try SharedMemory.attach(id: id)
  case ("shared-memory", "attachReadOnly"): _ = try SharedMemory.attach(id: id, flags: .readOnly)
  case ("shared-memory", _):
    // Read-only: the least access that gives an instance (setMode and setOwner need
    // ownership, not access).
    let memory = try SharedMemory.attach(id: id, flags: .readOnly)
    report("opened", "yes")
    switch operation {
    case "status": _ = try memory.status()
    case "writeReadOnly": try memory.write("forged")
    case "setMode": try memory.setMode(0o666)
    case "setOwner": try memory.setOwner(uid: 65534, gid: 65534)
    default: fail("unknown operation \(operation)")
    }
  case ("message-queue", "open"): _ = try MessageQueue(key: key, mode: 0o600)
  case ("message-queue", "remove"): try MessageQueue.remove(id: id)
  case ("message-queue", _):
    let queue = try MessageQueue(key: key, mode: 0)
    report("opened", "yes")
    switch operation {
    case "send": try queue.send("forged", block: false)
    case "receive": _ = try queue.receive(block: false)
    case "status": _ = try queue.status()
    case "setMode": try queue.setMode(0o666)
    case "setOwner": try queue.setOwner(uid: 65534, gid: 65534)
    case "setMaxSize": try queue.setMaxSize(100)
    default: fail("unknown operation \(operation)")
    }
  default:
    fail("unknown kind or operation \(kind) \(operation)")
  }
}

// MARK: - Removal while waiting

/// The calls that must all fail with `.existential` once an object is gone.
private typealias Call = (name: String, body: () throws -> Void)

private func waitUntilRemoved(kind: String, operation: String, id: Int32) throws {
  let wait: () throws -> Void
  let after: [Call]
  switch (kind, operation) {
  case ("semaphore", "acquire"):
    let semaphore = try Semaphore(id: id)
    wait = { try semaphore.acquire() }
    after = callsAfterRemoval(semaphore)
  case ("message-queue", "receive"), ("message-queue", "send"):
    let queue = try MessageQueue(id: id)
    wait =
      operation == "receive" ? { _ = try queue.receive() } : { try queue.send("blocked") }
    after = callsAfterRemoval(queue)
  default:
    fail("unknown kind or operation \(kind) \(operation)")
  }
  report("waiting", "yes")
  do {
    try wait()
    report("waitError", "none")
  } catch let error as IPCError {
    report("waitError", error.kind.description)
    for call in after {
      do {
        try call.body()
        report("after.\(call.name)", "ok")
      } catch let later as IPCError {
        report("after.\(call.name)", later.kind.description)
      }
    }
    throw error
  }
}

private func callsAfterRemoval(_ semaphore: SysVIPC.Semaphore) -> [Call] {
  var nonBlocking = semaphore
  nonBlocking.block = false
  return [
    ("acquire", { try semaphore.acquire() }),
    ("acquireNonBlocking", { try nonBlocking.acquire() }),
    ("acquireTimed", { try semaphore.acquire(timeout: .milliseconds(100)) }),
    ("release", { try semaphore.release() }),
    ("waitForZero", { try semaphore.waitForZero(timeout: .milliseconds(100)) }),
    ("value", { _ = try semaphore.value }),
    ("setValue", { try semaphore.setValue(1) }),
    ("status", { _ = try semaphore.status() }),
    ("mode", { _ = try semaphore.mode }),
    ("setMode", { try semaphore.setMode(0o600) }),
    ("setOwner", { try semaphore.setOwner(uid: 0) }),
    ("lastPID", { _ = try semaphore.lastPID }),
    ("waitingForNonzero", { _ = try semaphore.waitingForNonzero }),
    ("openByID", { _ = try Semaphore(id: semaphore.id) }),
    ("openByKey", { _ = try Semaphore(key: semaphore.key) }),
    ("remove", { try semaphore.remove() }),
  ]
}

private func callsAfterRemoval(_ queue: MessageQueue) -> [Call] {
  [
    ("send", { try queue.send("late") }),
    ("sendNonBlocking", { try queue.send("late", block: false) }),
    ("sendTimed", { try queue.send("late", timeout: .milliseconds(100)) }),
    ("receive", { _ = try queue.receive() }),
    ("receiveNonBlocking", { _ = try queue.receive(block: false) }),
    ("receiveTimed", { _ = try queue.receive(timeout: .milliseconds(100)) }),
    (
      "receiveInto",
      {
        var buffer = [UInt8](repeating: 0, count: 64)
        _ = try buffer.withUnsafeMutableBytes { try queue.receive(into: $0) }
      }
    ),
    ("status", { _ = try queue.status() }),
    ("currentMessages", { _ = try queue.currentMessages }),
    ("setMaxSize", { try queue.setMaxSize(100) }),
    ("mode", { _ = try queue.mode }),
    ("setMode", { try queue.setMode(0o600) }),
    ("setOwner", { try queue.setOwner(uid: 0) }),
    ("openByID", { _ = try MessageQueue(id: queue.id) }),
    ("openByKey", { _ = try MessageQueue(key: queue.key) }),
    ("remove", { try queue.remove() }),
  ]
}

// MARK: - Constructors that fail part-way

/// Every constructor that fails, whether before any system call, at the kernel's limits, or
/// after it created its object, must leave no object behind. Meant to run under
/// `unshare --ipc`: the limits and the listing are this namespace's alone.
private func partialFailures() throws {
  let lists = ["/proc/sysvipc/sem", "/proc/sysvipc/shm", "/proc/sysvipc/msg"]
  func listed() -> Int { lists.map(objectCount).reduce(0, +) }
  guard listed() == 0 else { fail("not a fresh private IPC namespace") }

  var cases = 0
  func attempt(_ name: String, _ body: () throws -> [any IPCObject]) {
    cases += 1
    var made: [any IPCObject] = []
    do {
      made = try body()
      report("\(name).kind", "none")
    } catch let error as IPCError {
      report("\(name).kind", error.kind.description)
      report("\(name).errno", String(error.errno?.rawValue ?? 0))
      report("\(name).message", error.message)
    } catch {
      report("\(name).kind", "unexpected \(error)")
    }
    report("\(name).listed", String(listed()))
    for object in made { try? object.remove() }
  }
  let semaphoreDefaults = "32000 1024000000 500 32000"
  let key = { IPCKey(rawValue: Int32.random(in: 1...Int32.max)) }

  // shmget succeeds, shmat fails: the address space is too small for the mapping. The control
  // shows the same call creating a segment without the limit.
  let big = 256 << 20
  attempt("shmAttachControl") {
    [try SharedMemory(key: nil, flags: .createExclusive, size: big, initCharacter: 0)]
  }
  try withAddressSpaceLimit(headroom: 32 << 20) {
    attempt("shmAttach") {
      [try SharedMemory(key: nil, flags: .createExclusive, size: big, initCharacter: 0)]
    }
  }

  // openOrCreate creates the set, then its "initialised" semop of two operations exceeds
  // semopm = 1 (E2BIG): the set it created must go again.
  attempt("openOrCreateControl") { [try Semaphore.openOrCreate(key: key(), initialValue: 1)] }
  writeSetting("/proc/sys/kernel/sem", "32000 1024000000 1 32000")
  attempt("openOrCreateSemaphore") { [try Semaphore.openOrCreate(key: key(), initialValue: 1)] }
  attempt("openOrCreateSet") {
    [try SemaphoreSet.openOrCreate(key: key(), count: 3, initialValues: [1, 2, 3])]
  }
  writeSetting("/proc/sys/kernel/sem", semaphoreDefaults)

  // Out of semaphores (semmns = 4): the second set of 3 does not fit; the first stays.
  writeSetting("/proc/sys/kernel/sem", "32000 4 500 32000")
  let first = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
  attempt("semmns") { [try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)] }
  try first.remove()
  writeSetting("/proc/sys/kernel/sem", semaphoreDefaults)

  // Out of shared memory pages (shmall = 1 page): the second one-page segment does not fit.
  writeSetting("/proc/sys/kernel/shmall", "1")
  let page = try SharedMemory(key: nil, flags: .createExclusive, initCharacter: 0)
  attempt("shmall") { [try SharedMemory(key: nil, flags: .createExclusive, initCharacter: 0)] }
  try page.remove()
  try page.detach()  // a removed segment lives until its last detach

  // Refused before any system call, or by the kernel's first call.
  attempt("semaphoreValue") {
    [try Semaphore(key: nil, flags: .createExclusive, initialValue: Semaphore.maxValue + 1)]
  }
  attempt("semaphoreMode") { [try Semaphore(key: nil, flags: .createExclusive, mode: 0o1600)] }
  attempt("setCountZero") { [try SemaphoreSet(key: nil, count: 0, flags: .createExclusive)] }
  attempt("setCountAboveSemmsl") {
    [try SemaphoreSet(key: nil, count: 32001, flags: .createExclusive)]
  }
  attempt("shmSizeZero") { [try SharedMemory(key: nil, flags: .createExclusive, size: 0)] }
  attempt("shmSizeHuge") { [try SharedMemory(key: nil, flags: .createExclusive, size: .max)] }
  attempt("queueMaxMessageSize") {
    [try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: 0)]
  }
  attempt("queueRandomKeyWithoutCreate") { [try MessageQueue(key: nil, flags: .create)] }
  report("cases", String(cases))
  report("listedAtEnd", String(listed()))
}

/// 0, 1, 2, ... 255, 0, 1, ... without end.
private func endlessBytes() -> some Sequence<UInt8> {
  (0...).lazy.map { UInt8(truncatingIfNeeded: $0) }
}

/// Runs an async `body` to its end from synchronous code (the helper's main is synchronous).
private func runAsync(_ body: @escaping @Sendable () async throws -> Void) throws {
  let outcome = Mutex<Result<Void, any Error>?>(nil)
  Task {
    let result: Result<Void, any Error>
    do {
      try await body()
      result = .success(())
    } catch {
      result = .failure(error)
    }
    outcome.withLock { $0 = result }
  }
  let deadline = monotonicSeconds() + 60
  while monotonicSeconds() < deadline {
    if let result = outcome.withLock({ $0 }) { return try result.get() }
    usleep(1000)
  }
  fail("the async call did not end within 60 s")
}

/// Runs `body` with the address space limited to its current size plus `headroom` bytes.
private func withAddressSpaceLimit(headroom: Int, _ body: () throws -> Void) throws {
  let status = try readFile("/proc/self/status")
  guard
    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
    let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
  else { fail("no VmSize in /proc/self/status") }
  var saved = rlimit()
  #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_AS.rawValue)
  #else
    let resource = RLIMIT_AS
  #endif
  getrlimit(resource, &saved)
  var limited = saved
  limited.rlim_cur = rlim_t(kilobytes * 1024 + headroom)
  guard setrlimit(resource, &limited) == 0 else { fail("setrlimit failed: \(errno)") }
  defer { setrlimit(resource, &saved) }
  try body()
}

private func writeSetting(_ path: String, _ value: String) {
  guard let file = fopen(path, "w") else { fail("cannot write \(path)") }
  fputs(value, file)
  fclose(file)
}
