/// The kernel's System V IPC limits (Python's `sysv_ipc` cannot report them).
///
/// Read by ``IPCSystem/limits()``: on Linux from `msgctl`, `semctl` and `shmctl` with
/// `IPC_INFO` (the values in `/proc/sys/kernel/{msgmax,msgmnb,msgmni,sem,shmmax,shmall,shmmni}`),
/// on macOS from the `kern.sysv.*` sysctls. A limit the platform does not report is `nil`.
/// Values the kernel keeps as unsigned 64-bit numbers larger than `Int.max` (Linux's default
/// `shmmax` and `shmall`) are reported as `Int.max`: "no practical limit".
public struct IPCLimits: Hashable, Sendable {
  /// The largest message, in bytes (`MSGMAX`, `/proc/sys/kernel/msgmax`).
  public var msgmax: Int?
  /// The default largest total of bytes on one queue (`MSGMNB`, `msg_qbytes` of a new queue).
  public var msgmnb: Int?
  /// The most message queues on the system (`MSGMNI`).
  public var msgmni: Int?
  /// The most semaphores in one set (`SEMMSL`).
  public var semmsl: Int?
  /// The most semaphores on the system (`SEMMNS`).
  public var semmns: Int?
  /// The most operations in one `semop` call (`SEMOPM`).
  public var semopm: Int?
  /// The most semaphore sets on the system (`SEMMNI`).
  public var semmni: Int?
  /// The largest value of a semaphore (`SEMVMX`, Python's `SEMAPHORE_VALUE_MAX`).
  public var semvmx: Int?
  /// The largest shared memory segment, in bytes (`SHMMAX`).
  public var shmmax: Int?
  /// The most shared memory on the system, in pages (`SHMALL`).
  public var shmall: Int?
  /// The most shared memory segments on the system (`SHMMNI`).
  public var shmmni: Int?
  /// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`, Python's `PAGE_SIZE`):
  /// segment sizes are rounded up to it.
  public var pageSize: Int

  /// Creates a set of limits; ``IPCSystem/limits()`` reads the real ones.
  public init(
    msgmax: Int?, msgmnb: Int?, msgmni: Int?, semmsl: Int?, semmns: Int?, semopm: Int?,
    semmni: Int?, semvmx: Int?, shmmax: Int?, shmall: Int?, shmmni: Int?, pageSize: Int
  ) {
    self.msgmax = msgmax
    self.msgmnb = msgmnb
    self.msgmni = msgmni
    self.semmsl = semmsl
    self.semmns = semmns
    self.semopm = semopm
    self.semmni = semmni
    self.semvmx = semvmx
    self.shmmax = shmmax
    self.shmall = shmall
    self.shmmni = shmmni
    self.pageSize = pageSize
  }

  /// Every limit with its C name (`msgmax`, `semvmx`, ...), in the order above: for printing.
  public var all: KeyValuePairs<String, Int?> {
    [
      "msgmax": msgmax, "msgmnb": msgmnb, "msgmni": msgmni,
      "semmsl": semmsl, "semmns": semmns, "semopm": semopm, "semmni": semmni, "semvmx": semvmx,
      "shmmax": shmmax, "shmall": shmall, "shmmni": shmmni, "pageSize": pageSize,
    ]
  }
}

/// How much of the kernel's System V resources is in use, for comparing with ``IPCLimits``:
/// what `ipcs -u` and `lsipc -g` report.
///
/// Counted by ``IPCSystem/usage()`` from the objects ``IPCSystem/objects()`` lists, so it is
/// the usage of the caller's IPC namespace, as the limits are.
public struct IPCUsage: Hashable, Sendable {
  /// Semaphore sets in use; compare with `semmni`.
  public var semaphoreSets: Int
  /// Semaphores in all sets (the sum of `sem_nsems`); compare with `semmns`.
  public var semaphores: Int
  /// Shared memory segments; compare with `shmmni`.
  public var sharedMemorySegments: Int
  /// Pages of shared memory: each segment's `shm_segsz` rounded up to whole pages, as the
  /// kernel counts them against `shmall`.
  public var sharedMemoryPages: Int
  /// Bytes of shared memory (the sum of `shm_segsz`).
  public var sharedMemoryBytes: Int
  /// Message queues; compare with `msgmni`.
  public var messageQueues: Int
  /// Messages on all queues (the sum of `msg_qnum`).
  public var messages: Int
  /// Bytes of message text on all queues (the sum of `msg_cbytes`).
  public var messageBytes: Int

  /// Adds up `objects`, counting shared memory in pages of `pageSize` bytes.
  public init(_ objects: [IPCObjectInfo], pageSize: Int) {
    semaphoreSets = 0
    semaphores = 0
    sharedMemorySegments = 0
    sharedMemoryPages = 0
    sharedMemoryBytes = 0
    messageQueues = 0
    messages = 0
    messageBytes = 0
    let page = max(pageSize, 1)
    for object in objects {
      switch object.kind {
      case .semaphore:
        semaphoreSets += 1
        semaphores += object.semaphoreCount ?? 0
      case .sharedMemory:
        let size = object.size ?? 0
        sharedMemorySegments += 1
        sharedMemoryBytes = sharedMemoryBytes.addingReportingOverflow(size).partialValue
        sharedMemoryPages += size / page + (size % page == 0 ? 0 : 1)
      case .messageQueue:
        messageQueues += 1
        messages += object.messageCount ?? 0
        messageBytes += object.messageBytes ?? 0
      }
    }
  }
}

extension IPCSystem {
  /// How much is in use now: the objects of ``objects()`` added up as ``IPCUsage`` says.
  ///
  /// - Throws: the errors of ``objects()`` and ``limits()``.
  public static func usage() throws(IPCError) -> IPCUsage {
    IPCUsage(try objects(), pageSize: try limits().pageSize)
  }
}
