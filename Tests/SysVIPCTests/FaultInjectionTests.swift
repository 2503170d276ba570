import Foundation
import SystemPackage
import Testing

@testable import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

// Every public operation against every errno its system calls can return (issue 15), with the
// debug-build fault injection of Core/FaultInjection.swift: real kernel objects, one call made to
// fail. For each (operation, errno) the operation must throw the kind of the one errno table
// (independently written down here, from the article "Errors"), carry the errno, leave its
// object as it was, and leave no object it created; EINTR must be retried (and a timed wait
// keep its deadline). The matrix is in RELIABILITY.md.

/// The errnos each call can return (Linux man pages), EINTR apart.
let errnosOf: [SystemCallName: [Int32]] = [
  .semget: [EACCES, EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC],
  .semop: [E2BIG, EACCES, EAGAIN, EFAULT, EFBIG, EIDRM, EINVAL, ENOMEM, ERANGE],
  .semtimedop: [E2BIG, EACCES, EAGAIN, EFAULT, EFBIG, EIDRM, EINVAL, ENOMEM, ERANGE],
  .semctl: [EACCES, EFAULT, EIDRM, EINVAL, EPERM, ERANGE],
  .shmget: [EACCES, EEXIST, EINVAL, ENFILE, ENOENT, ENOMEM, ENOSPC, EPERM],
  .shmat: [EACCES, EIDRM, EINVAL, ENOMEM],
  .shmdt: [EINVAL],
  .shmctl: [EACCES, EFAULT, EIDRM, EINVAL, ENOMEM, EOVERFLOW, EPERM],
  .msgget: [EACCES, EEXIST, ENOENT, ENOMEM, ENOSPC],
  .msgsnd: [EACCES, EAGAIN, EFAULT, EIDRM, EINVAL, ENOMEM],
  .msgrcv: [E2BIG, EACCES, EAGAIN, EFAULT, EIDRM, EINVAL, ENOMSG, ENOSYS],
  .msgctl: [EACCES, EFAULT, EIDRM, EINVAL, EPERM],
  .ftok: [EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOMEM, ENOTDIR],
  .ipcInfo: [EACCES, EFAULT, EINVAL, ENOSYS],
]

/// The article "Errors"' table: the kind an errno maps to (the object still exists, so EINVAL is
/// an argument the kernel refused).
func documentedKind(_ errno: Int32) -> IPCError.Kind {
  switch errno {
  case EEXIST, ENOENT, ENOTDIR, EIDRM: .existential
  case EACCES, EPERM: .permissions
  case EAGAIN, ENOMSG: .busy
  case ERANGE, E2BIG: .outOfRange
  case EINVAL: .invalidArgument
  default: .system
  }
}

/// The checks every fault case makes on what an operation threw for an injected `errno`: the
/// `kind` expected, that errno, and a message.
func expectMapped(
  _ thrown: IPCError, errno: Int32, kind: IPCError.Kind, _ label: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(thrown.kind == kind, "\(label): \(thrown)", sourceLocation: sourceLocation)
  #expect(
    thrown.errno == Errno(rawValue: errno), "\(label): \(thrown)", sourceLocation: sourceLocation)
  #expect(!thrown.message.isEmpty, "\(label)", sourceLocation: sourceLocation)
}

/// One public operation on fresh objects: what it calls, and what it does.
struct FaultCase: CustomTestStringConvertible, Sendable {
  let name: String
  /// The call to make fail.
  let call: SystemCallName
  /// How many successive calls fail (send and receive have no separate fast path any more: their
  /// first call is the general routine's).
  var times = 1
  /// Which call of it (1-based): for an operation that makes the call more than once.
  var nth = 1
  /// Errnos the operation handles by design, with why: it then succeeds.
  var absorbed: [Int32: String] = [:]
  /// Errnos whose mapping this operation documents otherwise (kind instead of the table's).
  var kinds: [Int32: IPCError.Kind] = [:]
  /// Makes the objects and returns the operation, a snapshot of the state it must not change,
  /// and the cleanup.
  let setUp: @Sendable () throws -> Fixture

  var testDescription: String { name }

  struct Fixture {
    var act: () throws -> Void
    var snapshot: () throws -> String = { "" }
    var cleanup: () -> Void = {}
  }
}

private func semaphore(_ value: Int = 1) throws -> SysVIPC.Semaphore {
  try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: value)
}

private func queue(messages: Int = 1) throws -> MessageQueue {
  let queue = try MessageQueue(key: nil, flags: .createExclusive)
  for i in 0..<messages { try queue.send("m\(i)") }
  return queue
}

private func queueState(_ queue: MessageQueue) throws -> String {
  let status = try queue.status()
  return "\(status.currentMessages) \(status.currentBytes) \(status.mode) \(status.maxSize)"
}

let faultCases: [FaultCase] = [
  // Semaphore
  FaultCase(
    name: "Semaphore(key: nil, .createExclusive)", call: .semget,
    absorbed: [EEXIST: "a random key that is taken: another is drawn"]
  ) {
    var made: SysVIPC.Semaphore?
    return .init(act: { made = try semaphore(0) }, cleanup: { try? made?.remove() })
  },
  FaultCase(name: "Semaphore(key:, initialValue: 5): SETVAL fails", call: .semctl) {
    var made: SysVIPC.Semaphore?
    return .init(
      act: { made = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 5) },
      cleanup: { try? made?.remove() })
  },
  FaultCase(name: "Semaphore(id:)", call: .semctl) {
    let s = try semaphore()
    return .init(
      act: { _ = try SysVIPC.Semaphore(id: s.id) }, snapshot: { "\(try s.value)" },
      cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.acquire()", call: .semop) {
    let s = try semaphore(1)
    return .init(
      act: { try s.acquire() }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.acquire(timeout:delta: 2)", call: .semtimedop) {
    let s = try semaphore(2)
    return .init(
      act: { try s.acquire(timeout: .seconds(5), delta: 2) }, snapshot: { "\(try s.value)" },
      cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.release()", call: .semop) {
    let s = try semaphore(1)
    return .init(
      act: { try s.release() }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.release(delta: 3)", call: .semop) {
    let s = try semaphore(1)
    return .init(
      act: { try s.release(delta: 3) }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() }
    )
  },
  FaultCase(name: "Semaphore.waitForZero(timeout: .zero)", call: .semop) {
    let s = try semaphore(0)
    return .init(
      act: { try s.waitForZero(timeout: .zero) }, snapshot: { "\(try s.value)" },
      cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.value", call: .semctl) {
    let s = try semaphore(3)
    return .init(
      act: { _ = try s.value }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.setValue", call: .semctl) {
    let s = try semaphore(3)
    return .init(
      act: { try s.setValue(7) }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.status()", call: .semctl, nth: 2) {
    let s = try semaphore(3)
    return .init(
      act: { _ = try s.status() }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.setMode", call: .semctl, nth: 2) {
    let s = try semaphore(3)
    return .init(
      act: { try s.setMode(0o640) }, snapshot: { "\(try s.mode)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.remove()", call: .semctl) {
    let s = try semaphore(3)
    return .init(
      act: { try s.remove() }, snapshot: { "\(try s.value)" }, cleanup: { try? s.remove() })
  },
  FaultCase(name: "Semaphore.openOrCreate: the mark fails", call: .semop) {
    let probe = try semaphore(0)
    try probe.remove()
    var made: SysVIPC.Semaphore?
    return .init(
      act: { made = try SysVIPC.Semaphore.openOrCreate(key: probe.key, initialValue: 2) },
      cleanup: { try? made?.remove() })
  },
  // SemaphoreSet
  FaultCase(name: "SemaphoreSet(key: nil, count: 2): IPC_STAT fails", call: .semctl) {
    var made: SemaphoreSet?
    return .init(
      act: { made = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive) },
      cleanup: { try? made?.remove() })
  },
  FaultCase(name: "SemaphoreSet.apply", call: .semop) {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    try set.setValues([1, 0])
    return .init(
      act: { try set.apply([.init(index: 0, delta: -1), .init(index: 1, delta: 1)]) },
      snapshot: { "\(try set.values())" }, cleanup: { try? set.remove() })
  },
  FaultCase(name: "SemaphoreSet.setValues", call: .semctl) {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    return .init(
      act: { try set.setValues([4, 5]) }, snapshot: { "\(try set.values())" },
      cleanup: { try? set.remove() })
  },
  FaultCase(name: "SemaphoreSet.values()", call: .semctl) {
    let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
    return .init(
      act: { _ = try set.values() }, snapshot: { "\(try set.values())" },
      cleanup: { try? set.remove() })
  },
  // SharedMemory
  FaultCase(
    name: "SharedMemory(key: nil, size: 4096)", call: .shmget,
    absorbed: [EEXIST: "a random key that is taken: another is drawn"]
  ) {
    var made: SharedMemory?
    return .init(act: { made = try makeSharedMemory(size: 4096) }, cleanup: { try? made?.remove() })
  },
  FaultCase(name: "SharedMemory(key: nil): IPC_STAT fails", call: .shmctl) {
    var made: SharedMemory?
    return .init(act: { made = try makeSharedMemory(size: 4096) }, cleanup: { try? made?.remove() })
  },
  FaultCase(name: "SharedMemory(key: nil): shmat fails", call: .shmat) {
    var made: SharedMemory?
    return .init(act: { made = try makeSharedMemory(size: 4096) }, cleanup: { try? made?.remove() })
  },
  FaultCase(name: "SharedMemory.openOrCreate: shmat fails", call: .shmat) {
    let key = try unusedSharedMemoryKey()
    var made: SharedMemory?
    return .init(
      act: { made = try SharedMemory.openOrCreate(key: key, size: 100) },
      cleanup: { try? made?.remove() })
  },
  FaultCase(name: "SharedMemory.attach(id:)", call: .shmat) {
    let m = try makeSharedMemory(size: 64, initCharacter: 0x61)
    return .init(
      act: { _ = try SharedMemory.attach(id: m.id) },
      snapshot: { "\(try m.read(count: 4)) \(try m.numberAttached)" }, cleanup: { try? m.remove() })
  },
  FaultCase(name: "SharedMemory.attach() while attached", call: .shmat) {
    let m = try makeSharedMemory(size: 64, initCharacter: 0x61)
    return .init(
      act: { try m.attach() },
      snapshot: {
        "\(String(describing: m.address)) \(try m.read(count: 4)) \(try m.numberAttached)"
      },
      cleanup: { try? m.remove() })
  },
  FaultCase(name: "SharedMemory.status()", call: .shmctl) {
    let m = try makeSharedMemory(size: 64)
    return .init(
      act: { _ = try m.status() }, snapshot: { "\(try m.numberAttached)" },
      cleanup: { try? m.remove() })
  },
  FaultCase(name: "SharedMemory.setMode", call: .shmctl, nth: 2) {
    let m = try makeSharedMemory(size: 64)
    return .init(
      act: { try m.setMode(0o640) }, snapshot: { "\(try m.mode)" }, cleanup: { try? m.remove() })
  },
  FaultCase(name: "SharedMemory.remove()", call: .shmctl) {
    let m = try makeSharedMemory(size: 64)
    return .init(
      act: { try m.remove() }, snapshot: { "\(try m.status().isMarkedForRemoval)" },
      cleanup: { try? m.remove() })
  },
  // MessageQueue
  FaultCase(
    name: "MessageQueue(key: nil)", call: .msgget,
    absorbed: [EEXIST: "a random key that is taken: another is drawn"]
  ) {
    var made: MessageQueue?
    return .init(
      act: { made = try MessageQueue(key: nil, flags: .createExclusive) },
      cleanup: { try? made?.remove() })
  },
  FaultCase(
    name: "MessageQueue(id:)", call: .msgctl,
    absorbed: [EACCES: "no read permission: opened without reading the key (issue 18, item 11)"]
  ) {
    let q = try queue()
    return .init(
      act: { _ = try MessageQueue(id: q.id) }, snapshot: { try queueState(q) },
      cleanup: { try? q.remove() })
  },
  FaultCase(
    name: "MessageQueue.send", call: .msgsnd,
    absorbed: [EAGAIN: "the queue was full: a blocking send waits (in the kernel) for room"],
    kinds: [:]
  ) {
    let q = try queue(messages: 0)
    return .init(act: { try q.send("hello") }, snapshot: { "" }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.send(block: false)", call: .msgsnd) {
    let q = try queue(messages: 1)
    return .init(
      act: { try q.send("hello", block: false) }, snapshot: { try queueState(q) },
      cleanup: { try? q.remove() })
  },
  FaultCase(
    name: "MessageQueue.send(MessageBuffer)", call: .msgsnd,
    absorbed: [EAGAIN: "the queue was full: a blocking send waits (in the kernel) for room"]
  ) {
    let q = try queue(messages: 1)
    return .init(
      act: {
        var buffer = try MessageQueue.MessageBuffer(capacity: 16)
        buffer.withUnsafeMutableText(count: 2) { $0.copyBytes(from: "hi".utf8) }
        try q.send(buffer)
      }, snapshot: { "" }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.receive()", call: .msgrcv) {
    let q = try queue(messages: 1)
    return .init(
      act: { _ = try q.receive() }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.receive(block: false)", call: .msgrcv) {
    let q = try queue(messages: 1)
    return .init(
      act: { _ = try q.receive(block: false) }, snapshot: { try queueState(q) },
      cleanup: { try? q.remove() })
  },
  FaultCase(
    name: "MessageQueue.receive(into:)", call: .msgrcv,
    absorbed: [E2BIG: "longer than the room after the type: received again into a scratch block"]
  ) {
    let q = try queue(messages: 1)
    return .init(
      act: {
        var bytes = [UInt8](repeating: 0, count: 64)
        _ = try bytes.withUnsafeMutableBytes { try q.receive(into: $0) }
      }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.receive(into: &MessageBuffer)", call: .msgrcv) {
    let q = try queue(messages: 1)
    return .init(
      act: {
        var buffer = try MessageQueue.MessageBuffer(capacity: 64)
        try q.receive(into: &buffer)
      }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.status()", call: .msgctl) {
    let q = try queue()
    return .init(
      act: { _ = try q.status() }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() })
  },
  FaultCase(name: "MessageQueue.setMaxSize", call: .msgctl, nth: 2) {
    let q = try queue()
    return .init(
      act: { try q.setMaxSize(1000) }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() }
    )
  },
  FaultCase(name: "MessageQueue.remove()", call: .msgctl) {
    let q = try queue()
    return .init(
      act: { try q.remove() }, snapshot: { try queueState(q) }, cleanup: { try? q.remove() })
  },
  // The system
  FaultCase(name: "IPCKey(path:projectID:)", call: .ftok) {
    .init(act: { _ = try IPCKey(path: "/tmp", projectID: 7) })
  },
  FaultCase(
    name: "IPCSystem.limits()", call: .ipcInfo,
    kinds: [EACCES: .system, EINVAL: .system]
  ) {
    .init(act: { _ = try IPCSystem.limits() })
  },
  FaultCase(name: "IPCSystem.objects(of: .messageQueue)", call: .ipcInfo) {
    .init(act: { _ = try IPCSystem.objects(of: .messageQueue) })
  },
]

@Suite("Fault injection: every operation × every errno of its calls")
struct FaultInjectionTests {
  @Test(arguments: faultCases)
  func everyErrnoMapsAndChangesNothing(_ faultCase: FaultCase) throws {
    for error in errnosOf[faultCase.call]! {
      let fixture = try faultCase.setUp()
      defer { fixture.cleanup() }
      let before = try fixture.snapshot()
      let plan = FaultPlan(
        .init(faultCase.call, nth: faultCase.nth, errno: error, times: faultCase.times))
      let outcome = Result { try FaultPlan.$current.withValue(plan) { try fixture.act() } }
      let label = "\(faultCase.name), \(faultCase.call) fails with \(Errno(rawValue: error))"
      #expect(plan.calls(faultCase.call) >= faultCase.nth, "\(label): the call was made")
      switch outcome {
      case .success:
        #expect(faultCase.absorbed[error] != nil, "\(label): succeeded")
        // Whatever it created stays until cleanup; only created objects may appear.
        continue
      case .failure(let thrown):
        #expect(faultCase.absorbed[error] == nil, "\(label): \(thrown)")
        let ipc = try #require(thrown as? IPCError, "\(label): \(thrown)")
        expectMapped(
          ipc, errno: error, kind: faultCase.kinds[error] ?? documentedKind(error), label)
      }
      // Nothing changed, and nothing this operation created is left.
      #expect(try fixture.snapshot() == before, "\(label): state changed")
      for id in plan.ids {
        let kind: IPCObjectKind =
          switch faultCase.call {
          case .shmget, .shmat, .shmctl, .shmdt: .sharedMemory
          case .msgget, .msgsnd, .msgrcv, .msgctl: .messageQueue
          default: .semaphore
          }
        #expect(!kind.exists(id: id), "\(label): \(kind) \(id) was created and left behind")
      }
    }
  }

  @Test(arguments: faultCases.filter { $0.call != .ftok && $0.call != .ipcInfo })
  func interruptionsAreRetried(_ faultCase: FaultCase) throws {
    let fixture = try faultCase.setUp()
    defer { fixture.cleanup() }
    let plan = FaultPlan(.init(faultCase.call, nth: faultCase.nth, errno: EINTR, times: 3))
    try FaultPlan.$current.withValue(plan) { try fixture.act() }
    #expect(plan.calls(faultCase.call) >= faultCase.nth + 3, "\(faultCase.name): retried")
  }

  @Test func detachMapsShmdtsError() throws {
    let memory = try makeSharedMemory(size: 64)
    defer { try? memory.remove() }
    let address = try #require(memory.address)
    let plan = FaultPlan(.init(.shmdt, errno: EINVAL))
    let error = expectIPCError(.invalidArgument) {
      try FaultPlan.$current.withValue(plan) { try memory.detach() }
    }
    #expect(error?.errno == .invalidArgument)
    #expect(!memory.isAttached, "the object no longer holds the mapping")
    #expect(system_shmdt(UInt(bitPattern: address)) == 0, "the real mapping was still there")
    // Interrupted: retried.
    try memory.attach()
    let interrupted = FaultPlan(.init(.shmdt, errno: EINTR, times: 2))
    try FaultPlan.$current.withValue(interrupted) { try memory.detach() }
    #expect(interrupted.calls(.shmdt) == 3)
    #expect(try memory.numberAttached == 0)
  }

  /// A timed semop interrupted twice, 100 ms in each time, still ends at its deadline: each
  /// retry gets only the time left.
  @Test(.timingSensitive) func interruptedTimedWaitKeepsItsDeadline() throws {
    let s = try semaphore(0)
    defer { try? s.remove() }
    let plan = FaultPlan(
      .init(.semtimedop, errno: EINTR, times: 2, delayNanoseconds: 100_000_000))
    let (error, seconds) = elapsed {
      expectIPCError(.busy) {
        try FaultPlan.$current.withValue(plan) { try s.acquire(timeout: .milliseconds(500)) }
      }
    }
    #expect(error?.message.contains("timed out") == true, "\(String(describing: error))")
    let timeouts = plan.timeouts
    #expect(timeouts.count == 3, "\(timeouts)")
    #expect(timeouts == timeouts.sorted(by: >), "each retry gets less: \(timeouts)")
    #expect(
      timeouts.last.map { $0 <= 310_000_000 } == true, "the last gets what is left: \(timeouts)")
    #expect(seconds >= 0.45 && seconds < 3, "\(seconds) s")
    #expect(try s.value == 0)
  }
}

/// The one system-call layer stays the only one: no file of the library but Core/Syscalls.swift
/// calls a System V function, the C shim, or the clock directly (so every call can be made to
/// fail by the tests above).
@Test func onlyTheSyscallLayerCallsTheSystem() throws {
  let calls = [
    "semget", "semop", "semtimedop", "semctl", "shmget", "shmat", "shmdt", "shmctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "ftok", "clock_gettime", "nanosleep", "sysconf", "sched_yield",
    // The waits' thread and signal calls (Core/WaitThreads.swift, Core/WaitSignal.swift).
    "pthread_create", "pthread_kill", "pthread_sigmask", "sigaction", "pthread_mutex_\\w+",
    "pthread_cond_\\w+", "pthread_condattr_\\w+", "pthread_key_create", "pthread_setspecific",
    "pthread_getspecific",
    // Process and file calls (System/IPCStaleness.swift) and raw allocation.
    "kill", "getpid", "open", "read", "close", "malloc", "free",
  ]
  let pattern = try Regex(
    #"(?:^|[^\w."])(?:"# + calls.joined(separator: "|") + #")\(|csysvipc_\w+\("#)
  let declaration = try Regex(#"func\s+\w+"#)
  let allowedTypes = [
    "csysvipc_sembuf(", "csysvipc_sem_status(", "csysvipc_shm_status(",
    "csysvipc_msg_status(", "csysvipc_limits(", "csysvipc_perm(",
  ]
  let sources = URL(fileURLWithPath: packageRoot).appendingPathComponent("Sources/SysVIPC")
  let files = try #require(FileManager.default.enumerator(atPath: sources.path))
    .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") && $0 != "Core/Syscalls.swift" }
  #expect(files.count > 10)
  for file in files {
    let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
    {
      let code = String(
        line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false)[0])
      // Names inside string literals (messages such as "semctl(GETVAL)") are not calls.
      let outsideStrings = code.split(separator: "\"", omittingEmptySubsequences: false)
        .enumerated().filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: " ")
        // A declaration (`func read(`) is not a call.
        .replacing(declaration, with: "func _")
      for match in outsideStrings.matches(of: pattern)
      where !allowedTypes.contains(where: { String(outsideStrings[match.range]).hasSuffix($0) }) {
        Issue.record("\(file):\(number + 1) calls the system directly: \(line)")
      }
    }
  }
}
