import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The System V IPC facilities as a whole: every object on the system, and the kernel's limits.
///
/// ```swift
/// for object in try IPCSystem.objects() where object.cuid == geteuid() {
///   print(object.kind, object.key, object.id)
/// }
/// print(try IPCSystem.limits().semvmx ?? 0)
/// ```
///
/// The `sysvipc` command-line tool's `list`, `info` and `limits` are built on it.
public enum IPCSystem {
  /// Every semaphore set, shared memory segment and message queue on the system, as `ipcs -a`
  /// lists them, ordered by kind and then by index in the kernel's table.
  ///
  /// On Linux the kernel's tables are walked by index: `SEM_INFO`, `SHM_INFO` and `MSG_INFO`
  /// give the highest index in use, and `SEM_STAT_ANY`, `SHM_STAT_ANY` and `MSG_STAT_ANY`
  /// (Linux 4.17) read each object whatever its permissions, as `ipcs` does. On older kernels
  /// the plain `*_STAT` is used, and objects the caller may not read are left out. An object
  /// removed while the list is being made is left out too.
  ///
  /// - Throws: ``IPCError/Kind/system`` (`ENOSYS`) where the platform cannot list its
  ///   objects (macOS), or for an unexpected error from the kernel.
  public static func objects() throws(IPCError) -> [IPCObjectInfo] {
    var result: [IPCObjectInfo] = []
    for kind in IPCObjectKind.allCases {
      result += try objects(of: kind)
    }
    return result
  }

  /// Every object of one kind on the system (`SEM_STAT_ANY`, `SHM_STAT_ANY` or `MSG_STAT_ANY` by
  /// index, up to `SEM_INFO`, `SHM_INFO` or `MSG_INFO`); see ``objects()``.
  public static func objects(of kind: IPCObjectKind) throws(IPCError) -> [IPCObjectInfo] {
    let maxIndex: Int32
    switch kind {
    case .semaphore:
      maxIndex = try listingCall("semctl(SEM_INFO)", kind) { system_maxIndex(kind) }
    case .sharedMemory:
      maxIndex = try listingCall("shmctl(SHM_INFO)", kind) { system_maxIndex(kind) }
    case .messageQueue:
      maxIndex = try listingCall("msgctl(MSG_INFO)", kind) { system_maxIndex(kind) }
    }
    guard maxIndex >= 0 else { return [] }
    var result: [IPCObjectInfo] = []
    for index in 0...maxIndex {
      if let info = try object(kind, atIndex: index) { result.append(info) }
    }
    return result
  }

  /// The object of `kind` with the kernel id `id` (`IPC_STAT`).
  ///
  /// - Throws: ``IPCError/Kind/existential`` when there is no such object,
  ///   ``IPCError/Kind/permissions`` when the caller may not read it (unlike ``objects()``,
  ///   which lists every object).
  public static func object(_ kind: IPCObjectKind, id: Int32) throws(IPCError) -> IPCObjectInfo {
    switch kind {
    case .semaphore:
      IPCObjectInfo(semaphore: id, try kind.semaphoreStatus(id: id))
    case .sharedMemory:
      IPCObjectInfo(sharedMemory: id, try kind.sharedMemoryStatus(id: id))
    case .messageQueue:
      IPCObjectInfo(messageQueue: id, try kind.messageQueueStatus(id: id))
    }
  }

  /// The kernel's limits: `IPC_INFO` on Linux (the values in `/proc/sys/kernel`), the
  /// `kern.sysv.*` sysctls on macOS, and the page size from `sysconf(_SC_PAGESIZE)`.
  ///
  /// - Throws: ``IPCError/Kind/system`` when the kernel refuses `IPC_INFO`.
  public static func limits() throws(IPCError) -> IPCLimits {
    var raw = csysvipc_limits()
    guard system_limits(&raw) == 0 else {
      let error = currentErrno
      throw IPCError(.system, "IPC_INFO: reading the kernel's limits failed", errno: error)
    }
    func known(_ value: Int64) -> Int? { value < 0 ? nil : Int(value) }
    return IPCLimits(
      msgmax: known(raw.msgmax), msgmnb: known(raw.msgmnb), msgmni: known(raw.msgmni),
      semmsl: known(raw.semmsl), semmns: known(raw.semmns), semopm: known(raw.semopm),
      semmni: known(raw.semmni), semvmx: known(raw.semvmx),
      shmmax: known(raw.shmmax), shmall: known(raw.shmall), shmmni: known(raw.shmmni),
      pageSize: system_pageSize())
  }

  // MARK: - Walking the tables

  /// One `*_STAT_ANY` by index: the object there, or `nil` for an unused slot (`EINVAL`), an
  /// object removed meanwhile (`EIDRM`) or, before Linux 4.17, one the caller may not read
  /// (`EACCES`).
  private static func object(_ kind: IPCObjectKind, atIndex index: Int32) throws(IPCError)
    -> IPCObjectInfo?
  {
    switch kind {
    case .semaphore:
      var status = csysvipc_sem_status()
      guard
        let id = try slot(
          "semctl(SEM_STAT_ANY) by index", kind, index,
          {
            system_statIndex(index, &status)
          })
      else { return nil }
      return IPCObjectInfo(semaphore: id, status)
    case .sharedMemory:
      var status = csysvipc_shm_status()
      guard
        let id = try slot(
          "shmctl(SHM_STAT_ANY) by index", kind, index,
          {
            system_statIndex(index, &status)
          })
      else { return nil }
      return IPCObjectInfo(sharedMemory: id, status)
    case .messageQueue:
      var status = csysvipc_msg_status()
      guard
        let id = try slot(
          "msgctl(MSG_STAT_ANY) by index", kind, index,
          {
            system_statIndex(index, &status)
          })
      else { return nil }
      return IPCObjectInfo(messageQueue: id, status)
    }
  }

  private static func slot(
    _ call: StaticString, _ kind: IPCObjectKind, _ index: Int32, _ stat: () -> Int32
  ) throws(IPCError) -> Int32? {
    do {
      return try retryingInterrupts(IPCOperation(call, kind, id: index)) { _ in stat() }
    } catch let error {
      switch error.errno {
      case .invalidArgument?, .identifierRemoved?, .permissionDenied?: return nil
      default: throw error
      }
    }
  }

  private static func listingCall(
    _ call: StaticString, _ kind: IPCObjectKind, _ body: () -> Int32
  ) throws(IPCError) -> Int32 {
    #if os(Linux)
      var op = IPCOperation(call, kind, key: .private)
      op.key = nil  // a call on the whole table, not on one object
      return try retryingInterrupts(op) { _ in body() }
    #else
      throw IPCError(
        .system, "\(call): listing System V objects is not supported on this platform",
        errno: .noFunction)
    #endif
  }
}

// MARK: - From the kernel's structures

extension IPCObjectInfo {
  init(semaphore id: Int32, _ status: csysvipc_sem_status) {
    self.init(kind: .semaphore, id: id, perm: status.perm, ctime: status.ctime)
    semaphoreCount = Int(clamping: status.nsems)
    lastOperationTime = date(fromKernelTime: status.otime)
  }

  init(sharedMemory id: Int32, _ status: csysvipc_shm_status) {
    self.init(kind: .sharedMemory, id: id, perm: status.perm, ctime: status.ctime)
    size = Int(clamping: status.size)
    attachCount = Int(clamping: status.nattch)
    creatorPID = status.cpid
    lastPID = status.lpid
    lastAttachTime = date(fromKernelTime: status.atime)
    lastDetachTime = date(fromKernelTime: status.dtime)
    isMarkedForRemoval = SysVIPC.isMarkedForRemoval(status.perm)
  }

  init(messageQueue id: Int32, _ status: csysvipc_msg_status) {
    self.init(kind: .messageQueue, id: id, perm: status.perm, ctime: status.ctime)
    messageCount = Int(clamping: status.qnum)
    messageBytes = Int(clamping: status.cbytes)
    maxQueueBytes = Int(clamping: status.qbytes)
    lastSendPID = status.lspid
    lastReceivePID = status.lrpid
    lastSendTime = date(fromKernelTime: status.stime)
    lastReceiveTime = date(fromKernelTime: status.rtime)
  }
}
