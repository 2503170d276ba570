import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// The three kinds of System V IPC object, by the C call family that makes them (`semget`,
/// `shmget`, `msgget`).
public enum IPCObjectKind: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
  /// A semaphore set (`semget`); ``Semaphore`` is a set of one.
  case semaphore
  /// A shared memory segment (`shmget`).
  case sharedMemory
  /// A message queue (`msgget`).
  case messageQueue

  /// The name used in messages: "semaphore", "shared memory", "message queue" (as `ipcs` heads
  /// its sections).
  public var name: String {
    switch self {
    case .semaphore: "semaphore"
    case .sharedMemory: "shared memory"
    case .messageQueue: "message queue"
    }
  }

  /// The kind's ``name``.
  public var description: String { name }
}

/// The result of opening or creating an object.
struct OpenedObject {
  var key: IPCKey
  var id: Int32
  /// Whether this call created the object (and so may initialise it, and must remove it if
  /// initialisation fails).
  var created: Bool
}

extension IPCObjectKind {
  /// Opens or creates an object: the key, flag and mode rules that all three kinds share.
  ///
  /// Plain ``IPCFlags/create`` first tries to create exclusively and falls back to opening, so the
  /// caller learns whether it created the object: C's `IPC_CREAT` alone cannot tell.
  ///
  /// - Parameters:
  ///   - extraFlags: the flags besides create/exclusive this kind accepts.
  ///   - get: the kind's get call (`semget`, `shmget`, `msgget`) for a key and complete flags.
  func open(
    key: IPCKey?, flags: IPCFlags, mode: IPCPermissions, extraFlags: IPCFlags = [],
    _ get: (_ key: Int32, _ flags: Int32) -> Int32
  ) throws(IPCError) -> OpenedObject {
    let call = getCallName
    let modeBits = try mode.validated(call)
    let extra = flags.subtracting(.createExclusive)
    guard extraFlags.isSuperset(of: extra) else {
      throw .invalid(
        "\(call): flags 0x\(String(extra.rawValue, radix: 16)) do not apply to \(name)")
    }
    if flags.contains(.exclusive) && !flags.contains(.create) {
      throw .invalid("\(call): .exclusive needs .create (use .createExclusive)")
    }
    let base = extra.rawValue | modeBits
    let createExclusive = base | IPCFlags.createExclusive.rawValue

    guard let key else {
      guard flags.contains(.createExclusive) else {
        throw .invalid("\(call): a random key (key: nil) needs .createExclusive")
      }
      // A random key that is taken gives EEXIST: draw another, a bounded number of times.
      for _ in 0..<128 {
        let candidate = IPCKey.random()
        let id = get(candidate.rawValue, createExclusive)
        if id >= 0 { return OpenedObject(key: candidate, id: id, created: true) }
        let error = currentErrno
        if error != .fileExists && error != .interrupted {
          throw IPCError.system(error, IPCOperation(call, self, key: candidate))
        }
      }
      throw IPCError(.existential, "\(call): no unused random key found after 128 tries")
    }

    let op = IPCOperation(call, self, key: key)
    if key == .private {
      guard flags.contains(.create) else {
        throw .invalid("\(call): IPCKey.private always creates a new object; pass .create")
      }
      let id = try retryingInterrupts(op) { _ in get(key.rawValue, createExclusive) }
      return OpenedObject(key: key, id: id, created: true)
    }
    if flags.contains(.exclusive) {
      let id = try retryingInterrupts(op) { _ in get(key.rawValue, createExclusive) }
      return OpenedObject(key: key, id: id, created: true)
    }
    if !flags.contains(.create) {
      let id = try retryingInterrupts(op) { _ in get(key.rawValue, base) }
      return OpenedObject(key: key, id: id, created: false)
    }
    // Open or create: create exclusively, else open; the object can vanish between the two
    // calls, so go round again (a bounded number of times).
    for _ in 0..<128 {
      var id = get(key.rawValue, createExclusive)
      if id >= 0 { return OpenedObject(key: key, id: id, created: true) }
      var error = currentErrno
      if error == .fileExists {
        id = get(key.rawValue, base)
        if id >= 0 { return OpenedObject(key: key, id: id, created: false) }
        error = currentErrno
      }
      if error != .noSuchFileOrDirectory && error != .fileExists && error != .interrupted {
        throw IPCError.system(error, op)
      }
    }
    throw IPCError(.internal, "\(op.subject): the object kept appearing and vanishing")
  }

  private var getCallName: StaticString {
    switch self {
    case .semaphore: "semget"
    case .sharedMemory: "shmget"
    case .messageQueue: "msgget"
    }
  }

  private var controlCallName: StaticString {
    switch self {
    case .semaphore: "semctl"
    case .sharedMemory: "shmctl"
    case .messageQueue: "msgctl"
    }
  }

  /// Whether `id` names an object of this kind (an IPC_STAT that does not fail with
  /// EINVAL or EIDRM; EACCES means it exists).
  func exists(id: Int32) -> Bool {
    let rc: Int32
    switch self {
    case .semaphore:
      var status = csysvipc_sem_status()
      rc = system_semctl_stat(id, &status)
    case .sharedMemory:
      var status = csysvipc_shm_status()
      rc = system_shmctl_stat(id, &status)
    case .messageQueue:
      var status = csysvipc_msg_status()
      rc = system_msgctl_stat(id, &status)
    }
    if rc == 0 { return true }
    let error = currentErrno
    return error != .invalidArgument && error != .identifierRemoved
  }

  /// `IPC_RMID`.
  func remove(id: Int32) throws(IPCError) {
    let op = IPCOperation(controlCallName, self, id: id)
    _ = try retryingInterrupts(op) { _ in
      switch self {
      case .semaphore: system_semctl(id, 0, IPC_RMID)
      case .sharedMemory: system_shmctl_remove(id)
      case .messageQueue: system_msgctl_remove(id)
      }
    }
  }

  /// `IPC_SET` of owner and mode, keeping what is not given.
  func set(id: Int32, uid: uid_t? = nil, gid: gid_t? = nil, mode: IPCPermissions? = nil)
    throws(IPCError)
  {
    let op = IPCOperation(controlCallName, self, id: id)
    let modeBits = try mode.map { (m) throws(IPCError) in UInt32(try m.validated(controlCallName)) }
    let current = try permissions(id: id)
    let newUID = uid ?? current.uid
    let newGID = gid ?? current.gid
    let newMode = modeBits ?? (current.mode & 0o777)
    _ = try retryingInterrupts(op) { _ in
      switch self {
      case .semaphore: system_semctl_set(id, newUID, newGID, newMode)
      case .sharedMemory: system_shmctl_set(id, newUID, newGID, newMode)
      case .messageQueue: setKeepingQueueSize(id: id, uid: newUID, gid: newGID, mode: newMode)
      }
    }
  }

  /// msgctl(IPC_SET) also sets msg_qbytes: keep the current one.
  private func setKeepingQueueSize(id: Int32, uid: UInt32, gid: UInt32, mode: UInt32) -> Int32 {
    var status = csysvipc_msg_status()
    if system_msgctl_stat(id, &status) != 0 { return -1 }
    return system_msgctl_set(id, uid, gid, mode, status.qbytes)
  }

  /// The object's `ipc_perm`, from one IPC_STAT.
  func permissions(id: Int32) throws(IPCError) -> csysvipc_perm {
    switch self {
    case .semaphore: try semaphoreStatus(id: id).perm
    case .sharedMemory: try sharedMemoryStatus(id: id).perm
    case .messageQueue: try messageQueueStatus(id: id).perm
    }
  }

  @inline(__always)
  func semaphoreStatus(id: Int32) throws(IPCError) -> csysvipc_sem_status {
    var status = csysvipc_sem_status()
    _ = try retryingInterrupts(IPCOperation("semctl(IPC_STAT)", self, id: id)) { _ in
      system_semctl_stat(id, &status)
    }
    return status
  }

  @inline(__always)
  func sharedMemoryStatus(id: Int32) throws(IPCError) -> csysvipc_shm_status {
    var status = csysvipc_shm_status()
    _ = try retryingInterrupts(IPCOperation("shmctl(IPC_STAT)", self, id: id)) { _ in
      system_shmctl_stat(id, &status)
    }
    return status
  }

  @inline(__always)
  func messageQueueStatus(id: Int32) throws(IPCError) -> csysvipc_msg_status {
    var status = csysvipc_msg_status()
    _ = try retryingInterrupts(IPCOperation("msgctl(IPC_STAT)", self, id: id)) { _ in
      system_msgctl_stat(id, &status)
    }
    return status
  }
}

/// Checks a user or group id for `setOwner`: `uid_t`/`gid_t` are 32 bits, and `-1` (all ones)
/// means "unchanged" to the kernel, so it is refused rather than passed on.
func validatedOwnerID(_ value: UInt32, _ what: StaticString) throws(IPCError) -> UInt32 {
  guard value != UInt32.max else {
    throw .invalid("setOwner: \(what) \(value) is not a valid id")
  }
  return value
}

/// A kernel time (seconds since 1970, 0 meaning never) as a `Date?`.
func date(fromKernelTime seconds: Int64) -> Date? {
  seconds == 0 ? nil : Date(timeIntervalSince1970: TimeInterval(seconds))
}
