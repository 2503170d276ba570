import Foundation
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

// The differential test's two sides and their comparison (issue 16). Python's sysv_ipc is the
// reference: a long-lived `Tests/Interop/differential_driver.py` runs each operation on its
// objects while SysVIPC runs it on objects of its own; after every operation the result, the
// error class and the kernel's state (IPC_STAT of every object either side holds) must agree,
// but for the intentional differences listed in `DifferentialDifference`.

/// Python's exception → `IPCError.Kind`: the table the error classes are compared by.
enum DifferentialErrorTable {
  static func kind(python name: String, errno: Int?) -> String {
    switch name {
    case "ExistentialError": "existential"
    case "PermissionsError": "permissions"
    case "BusyError": "busy"
    case "NotAttachedError": "notAttached"
    case "ValueError", "TypeError": "invalidArgument"
    case "OverflowError": "outOfRange"
    case "OSError" where errno == Int(E2BIG) || errno == Int(ERANGE): "outOfRange"
    case "InternalError": "internal"
    default: "system"  // sysv_ipc.Error, OSError with any other errno
    }
  }
}

/// The intentional differences: Python defects the package fixes, and checks Swift makes that
/// Python does not. Each is counted; anything else is a divergence. How each is handled:
/// a Swift-only check (the operation is not sent to Python; Swift must refuse it), an error
/// class the contract gives differently (compared through this rule), or Python's state put
/// back in step after the operation.
enum DifferentialDifference: String, CaseIterable, Sendable {
  /// Python turns mode bits above 0o777 into flags (0o1000 is IPC_CREAT) or drops them
  /// silently; SysVIPC refuses them (`.invalidArgument`). Swift only.
  case modeBitsAbove0o777
  /// Writing through a read-only attachment: Python segfaults; SysVIPC throws. Swift only.
  case writeThroughReadOnlyAttachment
  /// A semaphore's initial value outside 0...SEMVMX: SysVIPC refuses it before any call
  /// (`.outOfRange`); Python ignores it when it opens an existing semaphore. Swift only.
  case initialValueCheckedBeforeOpening
  /// Attaching an attached segment: Python maps it a second time and leaks the first mapping;
  /// SysVIPC maps it anew and then unmaps the first (the attach count stays). Python runs
  /// detach then attach instead, so the time of the last detach (`shm_dtime`) is not compared;
  /// on a segment marked for removal, where Python's detach would destroy it, the operation is
  /// skipped on both sides.
  case attachingTwiceMovesTheMapping
  /// `Semaphore(key, IPC_CREAT, initial_value=v)` on an existing semaphore: Python sets its
  /// value to v; SysVIPC applies the initial value only to a semaphore it created. Python's
  /// value is set back to Swift's after the operation, and Swift's set to itself, since a
  /// SETVAL also clears the undo adjustments.
  case initialValueAppliedToAnExistingSemaphore
  /// A semaphore value, or a release or acquire whose result or undo adjustment would leave
  /// 0...SEMVMX (the kernel's ERANGE): Python's ValueError, the contract's `.outOfRange`.
  case valueOutOfRangeIsOutOfRange
  /// A message longer than the handle's maxMessageSize: Python's ValueError, the contract's
  /// `.outOfRange` ("message too big").
  case messageTooBigIsOutOfRange
  /// A read or write that is out of bounds on a detached segment: Python reports the
  /// detachment first (NotAttachedError), SysVIPC the arguments (`.invalidArgument`), as its
  /// documentation orders them.
  case argumentsCheckedBeforeAttachment
  /// A write through a handle that was attached read-only and is now detached: Python still
  /// calls it read-only (OSError); SysVIPC reports the detachment or the arguments.
  case detachedSegmentIsNotReadOnly
  /// `SharedMemory.size` is the size the handle learnt when it opened the segment (a plain
  /// property); Python's `size` asks the kernel, ExistentialError once the segment is gone.
  case sizeIsTheHandles
  /// A send to a removed queue or an attach of a removed segment: Python passes the kernel's
  /// EINVAL on (OSError, ValueError); SysVIPC reports `.existential`, as for every call on a
  /// removed object of any kind.
  case callsOnARemovedObjectAreExistential
  /// A delta of 0: Python's ValueError; SysVIPC's `.outOfRange` (outside 1...SEMVMX), as for
  /// a delta above SEMVMX (Python's OverflowError).
  case zeroDeltaIsOutOfRange
  /// A message longer than the queue's whole capacity (`msg_qbytes`), or any message to a
  /// queue of capacity 0, which no receive can ever make room for: Python waits or reports
  /// BusyError; SysVIPC refuses it at once (`.outOfRange`).
  case messageLargerThanTheQueueIsOutOfRange
  /// A negative maximum queue size: SysVIPC refuses it (`.invalidArgument`); Python passes it
  /// to the kernel as a huge unsigned number. Swift only.
  case negativeMaxSizeRefused
  /// A maximum queue size above `UInt32.max`: SysVIPC refuses it (`.invalidArgument`); Python
  /// passes it to the kernel, which keeps its low 32 bits (1 << 40 became 0). Swift only.
  case maxSizeAbove32BitsRefused
  /// A segment created through IPC_CREAT without IPC_EXCL: SysVIPC fills it with the init
  /// character whenever this call created it; Python only with IPC_CREX. Python's segment is
  /// filled the same way after the operation.
  case initCharacterForEveryCreatedSegment
  /// A segment marked for removal: Python's `mode` includes the kernel's SHM_DEST bit
  /// (0o1000); SysVIPC's `mode` is the permission bits (the removal is `isMarkedForRemoval`).
  case modeIsThePermissionBits
  /// A negative segment size, or one beyond what any system allows (above Int.max / 2):
  /// SysVIPC refuses it before any call (`.invalidArgument`, `.outOfRange`); Python passes it
  /// on and reports what the kernel says of the key (ExistentialError) or ValueError. Swift
  /// only.
  case segmentSizeCheckedBeforeTheKernel
  /// `Semaphore(None, IPC_CREX, mode, initial_value=v)` with a mode that does not let the
  /// owner write (0o400, 0o444...): Python silently leaves the value at 0; SysVIPC sets it.
  /// Python's semaphore is set to Swift's value after the operation.
  case initialValueWhateverTheMode
  /// A maximum message size of 0 or less: SysVIPC refuses it (`.invalidArgument`); Python
  /// accepts 0 and then cannot receive. Swift only.
  case maxMessageSizeMustBePositive
  /// A message longer than the system allows (msgmax) through a handle whose
  /// maxMessageSize is larger: Python passes msgsnd's EINVAL on (OSError); SysVIPC refuses it
  /// with `.outOfRange`, the class of every message that is too big.
  case messageAboveMsgmaxIsOutOfRange
}

/// An operation's outcome on one side: `ok:<result>` or `error:<IPCError.Kind>`.
struct DifferentialStep: Equatable, CustomStringConvertible {
  var outcome: String
  var probe: [String]
  var state: [String]
  var description: String { "\(outcome) probe \(probe) state \(state)" }
}

/// The Python side: one `python3 differential_driver.py` process, driven over a pipe.
final class DifferentialPython {
  private let process = Process()
  private let input = Pipe()
  private let output = Pipe()
  private var buffer: [UInt8] = []
  private(set) var pid: pid_t = 0

  init(python: String) throws {
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [packageRoot + "/Tests/Interop/differential_driver.py"]
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    pid = process.processIdentifier
  }

  /// Sends one request line, returns the reply's JSON object.
  func request(_ line: String) throws -> [String: Any] {
    try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    while true {
      if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
        let reply = Data(buffer[..<end])
        buffer.removeSubrange(...end)
        guard let object = try JSONSerialization.jsonObject(with: reply) as? [String: Any] else {
          throw DifferentialFailure("the driver replied \(String(decoding: reply, as: UTF8.self))")
        }
        return object
      }
      let more = output.fileHandleForReading.availableData
      guard !more.isEmpty else { throw DifferentialFailure("the Python driver ended") }
      buffer += more
    }
  }

  func close() {
    try? input.fileHandleForWriting.write(contentsOf: Data(#"{"op":"quit"}"#.utf8 + [10]))
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
  }
}

struct DifferentialFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// The Swift side: the same operations through SysVIPC.
final class DifferentialSwift {
  let kind: DifferentialOperation.Kind
  let key: IPCKey
  let missingKey: IPCKey
  var semaphores: [SysVIPC.Semaphore] = []
  var segments: [SharedMemory] = []
  var queues: [MessageQueue] = []
  /// Every object this side created (removed at the end of the sequence).
  var created: Set<Int32> = []

  init(kind: DifferentialOperation.Kind, key: IPCKey, missingKey: IPCKey) {
    self.kind = kind
    self.key = key
    self.missingKey = missingKey
  }

  var handleCount: Int {
    switch kind {
    case .sem: semaphores.count
    case .shm: segments.count
    case .mq: queues.count
    }
  }

  var handleIDs: [Int32] {
    switch kind {
    case .sem: semaphores.map(\.id)
    case .shm: segments.map(\.id)
    case .mq: queues.map(\.id)
    }
  }

  /// Runs `op`: `ok:<result>` formatted as the driver formats it, or `error:<kind>`.
  func run(_ op: DifferentialOperation) -> String {
    do throws(IPCError) {
      return "ok:" + (try perform(op))
    } catch {
      return "error:\(error.kind)"
    }
  }

  private static let flags: [IPCFlags] = [[], .create, .exclusive, .createExclusive]

  private func perform(_ op: DifferentialOperation) throws(IPCError) -> String {
    if op.op == "create" { return try create(op) }
    let h = op.h % max(handleCount, 1)
    switch (kind, op.op) {
    case (.sem, "remove"): try semaphores[h].remove()
    case (.shm, "remove"): try segments[h].remove()
    case (.mq, "remove"): try queues[h].remove()
    case (_, "mode"): return String(try mode(h).rawValue, radix: 8)
    case (.sem, "setMode"): try semaphores[h].setMode(IPCPermissions(rawValue: UInt32(op.a)))
    case (.shm, "setMode"): try segments[h].setMode(IPCPermissions(rawValue: UInt32(op.a)))
    case (.mq, "setMode"): try queues[h].setMode(IPCPermissions(rawValue: UInt32(op.a)))
    case (_, "owner"): return try owner(h)
    case (.sem, "setOwner"): try semaphores[h].setOwner(uid: uid_t(op.a), gid: gid_t(op.b))
    case (.shm, "setOwner"): try segments[h].setOwner(uid: uid_t(op.a), gid: gid_t(op.b))
    case (.mq, "setOwner"): try queues[h].setOwner(uid: uid_t(op.a), gid: gid_t(op.b))
    case (.sem, "acquire"):
      semaphores[h].block = op.b & 1 != 0
      semaphores[h].undo = op.b & 2 != 0
      try semaphores[h].acquire(timeout: op.b & 4 != 0 ? .zero : nil, delta: op.a)
    case (.sem, "release"):
      semaphores[h].undo = op.b & 2 != 0
      try semaphores[h].release(delta: op.a)
    case (.sem, "zero"):
      semaphores[h].block = op.b & 1 != 0
      try semaphores[h].waitForZero(timeout: op.b & 4 != 0 ? .zero : nil)
    case (.sem, "value"): return String(try semaphores[h].value)
    case (.sem, "setValue"): try semaphores[h].setValue(op.a)
    case (.sem, "waiters"):
      return "\(try semaphores[h].waitingForNonzero),\(try semaphores[h].waitingForZero)"
    case (.shm, "attach"): try segments[h].attach(flags: op.a != 0 ? .readOnly : [])
    case (.shm, "detach"): try segments[h].detach()
    case (.shm, "read"):
      let data = try segments[h].read(count: op.a, offset: op.b)
      return "\(data.count):\(String(crc32(data), radix: 16))"
    case (.shm, "write"): try segments[h].write(payload(op.c, op.a), offset: op.b)
    case (.shm, "size"): return String(segments[h].size)
    case (.shm, "attached"):
      return "\(segments[h].isAttached ? 1 : 0),\(try segments[h].numberAttached)"
    case (.mq, "send"): try queues[h].send(payload(op.c, op.a), block: false, type: op.b)
    case (.mq, "receive"):
      let (message, type) = try queues[h].receive(block: false, type: op.b)
      return "\(type):\(message.count):\(String(crc32(message), radix: 16))"
    case (.mq, "maxSize"): return String(try queues[h].maxSize)
    case (.mq, "setMaxSize"): try queues[h].setMaxSize(op.a)
    case (.mq, "counts"): return String(try queues[h].currentMessages)
    default: fatalError("unknown differential operation \(op) for \(kind)")
    }
    return ""
  }

  private func create(_ op: DifferentialOperation) throws(IPCError) -> String {
    let key = op.missingKey ? missingKey : key
    let flags = Self.flags[op.f]
    let mode = IPCPermissions(rawValue: UInt32(op.a))
    let id: Int32
    switch kind {
    case .sem:
      let semaphore = try SysVIPC.Semaphore(key: key, flags: flags, mode: mode, initialValue: op.b)
      id = semaphore.id
      if !op.missingKey { semaphores.append(semaphore) }
    case .shm:
      let segment = try SharedMemory(
        key: key, flags: flags, mode: mode, size: op.b == 0 ? nil : op.b,
        initCharacter: UInt8(op.c))
      id = segment.id
      if op.missingKey { try? segment.detach() } else { segments.append(segment) }
    case .mq:
      let queue = try MessageQueue(key: key, flags: flags, mode: mode, maxMessageSize: op.b)
      id = queue.id
      if !op.missingKey { queues.append(queue) }
    }
    created.insert(id)  // both keys were free when the sequence began
    return ""
  }

  private func mode(_ h: Int) throws(IPCError) -> IPCPermissions {
    switch kind {
    case .sem: try semaphores[h].mode
    case .shm: try segments[h].mode
    case .mq: try queues[h].mode
    }
  }

  private func owner(_ h: Int) throws(IPCError) -> String {
    switch kind {
    case .sem:
      let s = semaphores[h]
      return "\(try s.uid),\(try s.gid),\(try s.cuid),\(try s.cgid)"
    case .shm:
      let s = segments[h]
      return "\(try s.uid),\(try s.gid),\(try s.cuid),\(try s.cgid)"
    case .mq:
      let s = queues[h]
      return "\(try s.uid),\(try s.gid),\(try s.cuid),\(try s.cgid)"
    }
  }

  /// What each handle sees: as the driver's probe.
  func probe() -> [String] {
    switch kind {
    case .sem:
      return semaphores.map { semaphore in
        do throws(IPCError) { return String(try semaphore.value) } catch {
          return error.kind == .existential ? "gone" : "\(error.kind)"
        }
      }
    case .shm:
      return segments.map { segment in
        guard segment.isAttached else { return "detached" }
        do throws(IPCError) { return String(crc32(try segment.read()), radix: 16) } catch {
          return "\(error.kind)"
        }
      }
    case .mq: return queues.map { _ in "-" }
    }
  }

  /// Detaches, then removes every object this side created.
  func cleanup() {
    for segment in segments { try? segment.detach() }
    for id in created {
      switch kind {
      case .sem: try? SysVIPC.Semaphore.remove(id: id)
      case .shm: try? SharedMemory.remove(id: id)
      case .mq: try? MessageQueue.remove(id: id)
      }
    }
    semaphores = []
    segments = []
    queues = []
    created = []
  }
}

extension DifferentialOperation.Kind {
  /// The id of the object of this kind at `key`, if there is one.
  func object(at key: IPCKey) -> Int32? {
    switch self {
    case .sem: try? SysVIPC.Semaphore(key: key).id
    case .shm: try? SharedMemory(key: key).id  // detaches as the handle goes
    case .mq: try? MessageQueue(key: key).id
    }
  }

  func remove(id: Int32) {
    switch self {
    case .sem: try? SysVIPC.Semaphore.remove(id: id)
    case .shm: try? SharedMemory.remove(id: id)
    case .mq: try? MessageQueue.remove(id: id)
    }
  }

  /// Removes every object of this kind at `key` (a key this test drew at random and found
  /// free); how many there were.
  @discardableResult
  func removeAll(at key: IPCKey) -> Int {
    var removed = 0
    while removed < 10, let id = object(at: key) {
      remove(id: id)
      removed += 1
    }
    return removed
  }
}

/// CRC-32 (zlib's), as the driver computes it.
func crc32(_ bytes: [UInt8]) -> UInt32 {
  var crc: UInt32 = 0xFFFF_FFFF
  for byte in bytes { crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
  return crc ^ 0xFFFF_FFFF
}

private let crc32Table: [UInt32] = (0..<256).map { (n: Int) -> UInt32 in
  (0..<8).reduce(UInt32(n)) { c, _ in c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
}

/// The bytes an operation writes or sends, as the driver derives them.
func payload(_ seed: Int, _ count: Int) -> [UInt8] {
  (0..<max(count, 0)).map { UInt8(truncatingIfNeeded: seed &+ $0 &* 31) }
}

/// The kernel's view of an object (one `IPC_STAT`, read the same way for both sides' objects),
/// normalised so that the two sides compare: keys, pids and times become what they are
/// relative to the side (own key, second key, 0; this process, none, another; set or not).
enum DifferentialKernelState {
  static func normalised(
    ids: [Int32], kind: DifferentialOperation.Kind, keys: (own: Int32, missing: Int32),
    pid: pid_t
  ) -> [String] {
    let objectKind: IPCObjectKind =
      switch kind {
      case .sem: .semaphore
      case .shm: .sharedMemory
      case .mq: .messageQueue
      }
    func who(_ process: pid_t?) -> String {
      process == pid ? "self" : process == 0 ? "0" : process == nil ? "nil" : "other"
    }
    func when(_ date: Date?) -> String { date == nil ? "0" : "t" }
    return ids.map { id in
      guard let info = try? IPCSystem.object(objectKind, id: id) else { return "gone" }
      let key = info.key.rawValue
      var fields = [
        key == keys.own ? "K" : key == keys.missing ? "M" : "\(key)",
        String(info.mode.rawValue, radix: 8), info.isMarkedForRemoval ? "dest" : "-",
        "\(info.uid)", "\(info.gid)", "\(info.cuid)", "\(info.cgid)",
      ]
      switch kind {
      case .sem:
        fields += ["n\(info.semaphoreCount ?? -1)", when(info.lastOperationTime)]
      case .shm:
        // The last detach time is not compared: see attachingTwiceMovesTheMapping.
        fields += [
          "size \(info.size ?? -1)", "nattch \(info.attachCount ?? -1)", who(info.creatorPID),
          who(info.lastPID), when(info.lastAttachTime),
        ]
      case .mq:
        fields += [
          "qnum \(info.messageCount ?? -1)", "cbytes \(info.messageBytes ?? -1)",
          "qbytes \(info.maxQueueBytes ?? -1)", who(info.lastSendPID), who(info.lastReceivePID),
          when(info.lastSendTime), when(info.lastReceiveTime),
        ]
      }
      return fields.joined(separator: " ")
    }
  }
}

/// Runs sequences on both sides and compares them.
final class DifferentialRunner {
  let python: String
  private var driver: DifferentialPython?
  private(set) var differences: [DifferentialDifference: Int] = [:]
  private(set) var operations = 0
  /// Objects found at a sequence's keys after both sides cleaned up: leaks (removed then).
  private(set) var leaks = 0
  /// Whether the sequence running now counts (a shrinking run does not).
  private var counting = true

  private func note(_ difference: DifferentialDifference) {
    if counting { differences[difference, default: 0] += 1 }
  }

  init(python: String) { self.python = python }

  deinit { driver?.close() }

  private func liveDriver() throws -> DifferentialPython {
    if let driver { return driver }
    let started = try DifferentialPython(python: python)
    driver = started
    return started
  }

  /// A divergence: the operation at `index` of `sequence` gave `python` and `swift`.
  struct Divergence: CustomStringConvertible {
    var kind: DifferentialOperation.Kind
    var sequence: [DifferentialOperation]
    var index: Int
    var python: DifferentialStep
    var swift: DifferentialStep
    var description: String {
      let steps = sequence.prefix(index + 1).enumerated().map { "  \($0.offset): \($0.element)" }
      return """
        \(kind) sequence diverges at operation \(index):
        \(steps.joined(separator: "\n"))
          python: \(python)
          swift:  \(swift)
        """
    }
  }

  private static func randomKey() -> IPCKey { IPCKey(rawValue: Int32.random(in: 1...Int32.max)) }

  /// Runs `sequence` on fresh objects on both sides; the first divergence, or nil. Every object
  /// either side created is removed before it returns, also when it throws.
  func run(
    _ kind: DifferentialOperation.Kind, _ sequence: [DifferentialOperation], counting: Bool = true
  ) throws -> Divergence? {
    for _ in 0..<20 {
      let keys = (swift: Self.randomKey(), python: Self.randomKey())
      let missing = (swift: Self.randomKey(), python: Self.randomKey())
      // Four free keys, so that whatever is at them afterwards is this test's to remove.
      let all = [keys.swift, keys.python, missing.swift, missing.python]
      guard Set(all).count == 4, all.allSatisfy({ kind.object(at: $0) == nil }) else { continue }
      defer {
        for key in all where kind.removeAll(at: key) > 0 { leaks += 1 }
      }
      let result = try run(kind, sequence, keys: keys, missing: missing, counting: counting)
      if let result { return result.divergence }
      // The first creation found a key in use on either side: other keys.
    }
    throw DifferentialFailure("no free key found in 20 tries")
  }

  private struct Result { var divergence: Divergence? }

  private func run(
    _ kind: DifferentialOperation.Kind, _ sequence: [DifferentialOperation],
    keys: (swift: IPCKey, python: IPCKey), missing: (swift: IPCKey, python: IPCKey),
    counting: Bool
  ) throws -> Result? {
    self.counting = counting
    let driver = try liveDriver()
    let swift = DifferentialSwift(kind: kind, key: keys.swift, missingKey: missing.swift)
    var pythonIDs: Set<Int32> = []
    defer {
      swift.cleanup()
      if (try? driver.request(#"{"op":"cleanup"}"#)) == nil {
        // The driver is gone: remove what it reported creating (the caller removes, and
        // counts, whatever is still at the keys), and start a new one next time.
        for id in pythonIDs { kind.remove(id: id) }
        self.driver = nil
      }
    }
    _ = try driver.request(
      #"{"op":"begin","kind":"\#(kind.rawValue)","key":\#(keys.python.rawValue),"missing":\#(missing.python.rawValue)}"#
    )
    let myPID = getpid()
    for (index, op) in sequence.enumerated() {
      let swiftOnly = swiftOnlyDifference(op, swift)
      let pythonKey = op.missingKey ? missing.python.rawValue : keys.python.rawValue
      if op.op == "attach", !swift.segments.isEmpty {
        let segment = swift.segments[op.h % swift.segments.count]
        if segment.isAttached {
          if (try? segment.status().isMarkedForRemoval) != false { continue }
          note(.attachingTwiceMovesTheMapping)
          _ = try driver.request(DifferentialOperation(op: "detach", h: op.h).json(key: pythonKey))
        }
      }
      let reply = try driver.request(
        swiftOnly == nil ? op.json(key: pythonKey) : #"{"op":"run","name":"noop"}"#)
      let swiftOutcome = swift.run(op)
      if counting { operations += 1 }
      var pythonOutcome: String
      if let result = reply["r"] as? String {
        pythonOutcome = "ok:" + (result == "ok" ? "" : result)
      } else {
        pythonOutcome =
          "error:"
          + DifferentialErrorTable.kind(
            python: reply["e"] as? String ?? "?", errno: reply["errno"] as? Int)
      }
      let pythonHandles = (reply["hid"] as? [Int] ?? []).map { Int32($0) }
      pythonIDs.formUnion(pythonHandles)
      if index == 0 && (swiftOutcome == "error:existential" || pythonOutcome == "error:existential")
      {
        return nil  // a key in use: try others
      }
      if let swiftOnly {
        // The Swift side must refuse (or re-attach); the Python side did nothing (its probe
        // and state are still compared).
        note(swiftOnly)
        pythonOutcome = swiftOutcome.hasPrefix("error:") ? swiftOutcome : "error:(a refusal)"
      }
      var pythonProbe = reply["probe"] as? [String] ?? []
      let swiftProbe = swift.probe()
      if kind == .sem, op.op == "create", op.f == 1, !op.missingKey,
        swiftOutcome == "ok:", pythonOutcome == "ok:", let last = swiftProbe.last,
        let value = Int(last)
      {
        // Python's SETVAL (of the initial value) cleared every process's undo adjustment,
        // even where it left the value as it was: put Python's value back to Swift's, and
        // let the same SETVAL on the Swift side clear Swift's, so later undo operations agree.
        if pythonProbe != swiftProbe { note(.initialValueAppliedToAnExistingSemaphore) }
        let fix = DifferentialOperation(op: "setValue", h: pythonProbe.count - 1, a: value)
        pythonProbe = try driver.request(fix.json(key: pythonKey))["probe"] as? [String] ?? []
        try? swift.semaphores.last?.setValue(value)
      }
      if kind == .sem, op.op == "create", op.f == 3, op.a & 0o200 == 0, !op.missingKey,
        swiftOutcome == "ok:", pythonOutcome == "ok:", pythonProbe != swiftProbe,
        let last = swiftProbe.last, let value = Int(last), let id = pythonHandles.last
      {
        // Python cannot set it either: SysVIPC sets it (root ignores the mode).
        note(.initialValueWhateverTheMode)
        try? SysVIPC.Semaphore(id: id).setValue(value)
        pythonProbe = try driver.request(#"{"op":"run","name":"noop"}"#)["probe"] as? [String] ?? []
      }
      if kind == .shm, op.op == "create", op.f == 1, !op.missingKey,
        swiftOutcome == "ok:", pythonOutcome == "ok:", pythonProbe != swiftProbe,
        let segment = swift.segments.last,
        swiftProbe.last
          == String(crc32([UInt8](repeating: UInt8(op.c), count: segment.size)), radix: 16)
      {
        note(.initCharacterForEveryCreatedSegment)
        let fix = DifferentialOperation(op: "fill", h: pythonProbe.count - 1, c: op.c)
        pythonProbe = try driver.request(fix.json(key: pythonKey))["probe"] as? [String] ?? []
      }
      let pythonState = DifferentialKernelState.normalised(
        ids: pythonHandles, kind: kind, keys: (keys.python.rawValue, missing.python.rawValue),
        pid: driver.pid)
      let swiftState = DifferentialKernelState.normalised(
        ids: swift.handleIDs, kind: kind, keys: (keys.swift.rawValue, missing.swift.rawValue),
        pid: myPID)
      if pythonOutcome != swiftOutcome,
        let difference = remapped(
          op, python: pythonOutcome, swift: swiftOutcome, swift,
          gone: swift.handleCount > 0 && swiftState[op.h % swift.handleCount] == "gone")
      {
        note(difference)
        pythonOutcome = swiftOutcome
      }
      let pythonStep = DifferentialStep(
        outcome: pythonOutcome, probe: pythonProbe, state: pythonState)
      let swiftStep = DifferentialStep(outcome: swiftOutcome, probe: swiftProbe, state: swiftState)
      if pythonStep != swiftStep {
        return Result(
          divergence: Divergence(
            kind: kind, sequence: sequence, index: index, python: pythonStep, swift: swiftStep))
      }
    }
    return Result(divergence: nil)
  }

  /// The intentional difference that makes `op` a Swift-only check, if any.
  private func swiftOnlyDifference(_ op: DifferentialOperation, _ swift: DifferentialSwift)
    -> DifferentialDifference?
  {
    if (op.op == "setMode" || op.op == "create") && op.a & ~0o777 != 0 {
      return .modeBitsAbove0o777
    }
    if swift.kind == .sem, op.op == "create", !(0...SysVIPC.Semaphore.maxValue).contains(op.b) {
      return .initialValueCheckedBeforeOpening
    }
    if op.op == "setMaxSize", op.a < 0 { return .negativeMaxSizeRefused }
    if op.op == "setMaxSize", op.a > Int(UInt32.max) { return .maxSizeAbove32BitsRefused }
    if swift.kind == .mq, op.op == "create", op.b <= 0 { return .maxMessageSizeMustBePositive }
    if swift.kind == .shm, op.op == "create", op.b < 0 || op.b > Int.max / 2 {
      return .segmentSizeCheckedBeforeTheKernel
    }
    if op.op == "write", swift.kind == .shm, !swift.segments.isEmpty,
      swift.segments[op.h % swift.segments.count].isReadOnly
    {
      return .writeThroughReadOnlyAttachment
    }
    return nil
  }

  /// The intentional difference under which Python's `python` outcome and Swift's `swift`
  /// are the same answer, if any.
  private func remapped(
    _ op: DifferentialOperation, python: String, swift: String, _ side: DifferentialSwift,
    gone: Bool
  ) -> DifferentialDifference? {
    switch (side.kind, op.op, python, swift) {
    case (_, "mode", _, _):
      let masked = Int(python.dropFirst(3), radix: 8).map { String($0 & 0o777, radix: 8) }
      return python.hasPrefix("ok:") && "ok:" + (masked ?? "") == swift
        ? .modeIsThePermissionBits : nil
    case (.mq, "send", "error:system", "error:existential") where gone,
      (.shm, "attach", "error:invalidArgument", "error:existential") where gone:
      return .callsOnARemovedObjectAreExistential
    case (.sem, "setValue", "error:invalidArgument", "error:outOfRange")
    where !(0...SysVIPC.Semaphore.maxValue).contains(op.a):
      return .valueOutOfRangeIsOutOfRange
    case (.sem, "release", "error:invalidArgument", "error:outOfRange")
    where op.a != 0 && op.a.magnitude <= SysVIPC.Semaphore.maxValue,
      (.sem, "acquire", "error:invalidArgument", "error:outOfRange")
    where op.a != 0 && op.a.magnitude <= SysVIPC.Semaphore.maxValue:
      return .valueOutOfRangeIsOutOfRange
    case (.sem, "acquire", "error:invalidArgument", "error:outOfRange") where op.a == 0,
      (.sem, "release", "error:invalidArgument", "error:outOfRange") where op.a == 0:
      return .zeroDeltaIsOutOfRange
    case (.mq, "send", "error:system", "error:outOfRange") where op.a > Self.msgmax:
      return .messageAboveMsgmaxIsOutOfRange
    case (.mq, "send", "error:busy", "error:outOfRange")
    where (try? side.queues[op.h % side.queues.count].maxSize).map { op.a > $0 || $0 == 0 }
      == true:
      return .messageLargerThanTheQueueIsOutOfRange
    case (.mq, "send", "error:invalidArgument", "error:outOfRange")
    where !side.queues.isEmpty && op.a > side.queues[op.h % side.queues.count].maxMessageSize:
      return .messageTooBigIsOutOfRange
    case (.shm, "size", "error:existential", _) where swift.hasPrefix("ok:"):
      return .sizeIsTheHandles
    case (.shm, "write", "error:system", "error:notAttached"),
      (.shm, "write", "error:system", "error:invalidArgument"):
      return side.segments.isEmpty || side.segments[op.h % side.segments.count].isAttached
        ? nil : .detachedSegmentIsNotReadOnly
    case (.shm, "read", "error:notAttached", "error:invalidArgument"),
      (.shm, "write", "error:notAttached", "error:invalidArgument"):
      return side.segments.isEmpty || side.segments[op.h % side.segments.count].isAttached
        ? nil : .argumentsCheckedBeforeAttachment
    default: return nil
    }
  }

  /// The system's largest message (msgmax).
  static let msgmax = (try? IPCSystem.limits().msgmax ?? 8192) ?? 8192

  /// The shortest sequence found that still diverges: operations are dropped one at a time
  /// (never the first, which creates the object) while the divergence stays.
  func shrink(_ divergence: Divergence) throws -> Divergence {
    var best = divergence
    best.sequence = Array(best.sequence.prefix(best.index + 1))
    var changed = true
    while changed {
      changed = false
      var index = best.sequence.count - 2
      while index >= 1 {
        var candidate = best.sequence
        candidate.remove(at: index)
        if let smaller = try run(best.kind, candidate, counting: false) {
          best = smaller
          best.sequence = Array(best.sequence.prefix(best.index + 1))
          changed = true
          index = min(index, best.sequence.count - 1)
        }
        index -= 1
      }
    }
    return best
  }
}
