import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Commands that are not about one object kind:
/// whoami                                   print uid/euid
/// set-create-raw COUNT                      semget(IPC_PRIVATE, COUNT) with plain C, as PHP would
/// set-reader ID TOTAL READS                 once semaphore 1 is nonzero, read all values
///                                           atomically READS times, counting sums != TOTAL
///                                           and the distinct states seen
/// race-open-or-create KEY GATE_ID VALUE     wait for the gate to reach zero, then openOrCreate and
///                                           take one unit
/// async-cancel-acquire ID                  await an acquire in a task, cancel it once it waits,
///                                           print how long the task took to end (ms)
/// async-cancel-receive ID                  the same for a receive on an empty queue
/// create-default KIND [--umask U]           with umask U (octal, default 0), create with the
///                                           default mode; print it
/// create-open KIND MODE                     create with MODE at a random key; print key and id
/// ns-exhaust KIND LIMIT                     in a private IPC namespace: lower the kind's object
///                                           limit to LIMIT, create until ENOSPC, count objects
/// KIND: semaphore, set, shared-memory, message-queue.
/// load-... (LoadCommands.swift) and rel-... (ReliabilityCommands.swift): the reliability tests.
func otherCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "whoami":
    report("uid", String(getuid()))
    report("euid", String(geteuid()))
  case "set-create-raw":
    let id = semget(IPC_PRIVATE, args.int32("count"), IPC_CREAT | 0o600)
    guard id >= 0 else { fail("semget failed: \(errno)") }
    report("id", String(id))
  case "set-reader":
    let set = try SemaphoreSet(id: args.int32("id"))
    let total = Int(args.next("total"))!
    let reads = Int(args.next("reads"))!
    var violations = 0
    var statesSeen = Set<Int>()
    report("reading", "yes")
    // Count only once the writer has started, so every counted read overlaps its transfers.
    let end = monotonicSeconds() + 60
    while try set.value(at: 1) == 0 {
      guard monotonicSeconds() < end else { fail("the transfers never started") }
    }
    for _ in 0..<reads {
      let values = try set.values()
      if values.reduce(0, +) != total { violations += 1 }
      statesSeen.insert(values[1])
    }
    report("violations", String(violations))
    report("distinct", String(statesSeen.count))
  case "race-open-or-create":
    let key = args.key()
    let gate = try Semaphore(id: args.int32("gate"))
    let value = Int(args.next("value"))!
    report("ready", "yes")
    try gate.waitForZero()
    let (semaphore, created) = try Semaphore.openOrCreateReportingCreation(
      key: key, initialValue: value, timeout: .seconds(30))
    report("created", created ? "yes" : "no")
    report("seen", String(try semaphore.value >= 0))
    try semaphore.acquire(timeout: .seconds(30))
  case "async-cancel-acquire":
    let semaphore = try Semaphore(id: args.int32("id"))
    try measureCancellation(waiters: { try semaphore.waitingForNonzero }) {
      try await semaphore.acquire()
    }
  case "async-cancel-receive":
    let queue = try MessageQueue(id: args.int32("id"))
    // A polling receive shows in no kernel count: cancel once it has surely started polling.
    let start = monotonicSeconds()
    try measureCancellation(waiters: { monotonicSeconds() - start > 0.2 ? 1 : 0 }) {
      _ = try await queue.receive()
    }
  case "create-default":
    umask(mode_t(args.option("umask").flatMap { UInt32($0, radix: 8) } ?? 0))
    let object = try createObject(kind: args.next("kind"), mode: nil)
    report("mode", String(try object.mode.rawValue, radix: 8))
    try object.remove()
  case "create-open":
    let kind = args.next("kind")
    let mode = IPCPermissions(rawValue: UInt32(args.next("mode"), radix: 8) ?? 0o600)
    let object = try createObject(kind: kind, mode: mode)
    report("key", String(object.key.rawValue))
    report("id", String(object.id))
  case "ns-exhaust":
    try exhaustIdentifiers(kind: args.next("kind"), limit: Int(args.next("limit")) ?? 4)
  case _ where command.hasPrefix("load-"):
    try loadCommand(command, &args)
  case _ where command.hasPrefix("rel-"):
    try reliabilityCommand(command, &args)
  default:
    fail("unknown command \(command)")
  }
}

/// Creates one object of `kind` (semaphore, set, shared-memory, message-queue) at a random key,
/// with `mode` or the default.
func createObject(kind: String, mode: IPCPermissions?) throws -> any IPCObject {
  switch kind {
  case "semaphore":
    if let mode { return try Semaphore(key: nil, flags: .createExclusive, mode: mode) }
    return try Semaphore(key: nil, flags: .createExclusive)
  case "set":
    if let mode { return try SemaphoreSet(key: nil, count: 3, flags: .createExclusive, mode: mode) }
    return try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
  case "private-set-of-4":
    // The shape of a private channel's semaphore set (a header may be made to name it).
    return try SemaphoreSet(
      key: .private, count: 4, flags: .createExclusive, mode: mode ?? 0o600)
  case "shared-memory":
    if let mode { return try SharedMemory(key: nil, flags: .createExclusive, mode: mode) }
    return try SharedMemory(key: nil, flags: .createExclusive)
  case "message-queue":
    if let mode { return try MessageQueue(key: nil, flags: .createExclusive, mode: mode) }
    return try MessageQueue(key: nil, flags: .createExclusive)
  default:
    fail("unknown kind \(kind)")
  }
}

/// The /proc/sys/kernel file and the value that lowers each kind's identifier limit.
private func limitSetting(kind: String, limit: Int) -> (path: String, value: String, list: String) {
  switch kind {
  case "semaphore", "set": ("/proc/sys/kernel/sem", "250 32000 32 \(limit)", "/proc/sysvipc/sem")
  case "shared-memory": ("/proc/sys/kernel/shmmni", "\(limit)", "/proc/sysvipc/shm")
  default: ("/proc/sys/kernel/msgmni", "\(limit)", "/proc/sysvipc/msg")
  }
}

/// The number of objects listed in a /proc/sysvipc file (its first line is a header).
func objectCount(_ list: String) -> Int {
  guard let file = fopen(list, "r") else { return -1 }
  defer { fclose(file) }
  var lines = 0
  var character = fgetc(file)
  while character != EOF {
    if character == 10 { lines += 1 }
    character = fgetc(file)
  }
  return lines - 1
}

/// Meant to run under `unshare --ipc`: the limits and objects are this namespace's alone.
func exhaustIdentifiers(kind: String, limit: Int) throws {
  let (path, value, list) = limitSetting(kind: kind, limit: limit)
  guard objectCount(list) == 0 else { fail("not a fresh private IPC namespace") }
  guard let file = fopen(path, "w") else { fail("cannot write \(path)") }
  fputs(value, file)
  fclose(file)
  var created: [any IPCObject] = []
  defer { for object in created { try? object.remove() } }
  var failure: IPCError?
  for _ in 0..<(limit + 1) {
    do { created.append(try createObject(kind: kind, mode: nil)) } catch let error as IPCError {
      failure = error
      break
    }
  }
  report("created", String(created.count))
  report("listed", String(objectCount(list)))
  if let failure {
    report("kind", failure.kind.description)
    report("errno", String(failure.errno?.rawValue ?? 0))
    report("message", failure.message)
  }
  // Constructors that fail at the limit leave nothing half-created.
  for _ in 0..<3 { _ = try? createObject(kind: kind, mode: nil) }
  report("listedAfterRetries", String(objectCount(list)))
  for object in created { try object.remove() }
  created.removeAll()
  report("listedAfterRemoval", String(objectCount(list)))
}
