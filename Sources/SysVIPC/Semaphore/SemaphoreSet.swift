import CSysVIPC

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A System V semaphore set: N semaphores under one id, changed together atomically
/// (`semget`, `semop`, `semctl`). Python's `sysv_ipc` has no such type.
///
/// ```swift
/// let accounts = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
/// defer { try? accounts.remove() }
/// try accounts.setValues([100, 0])
/// // Move one unit from 0 to 1: both changes happen, or neither.
/// try accounts.apply([.init(index: 0, delta: -1), .init(index: 1, delta: +1)])
/// ```
///
/// Sets created by other programs open and work, for example PHP's `sysvsem`, which makes
/// sets of 3. Like ``Semaphore`` it is a small `Sendable` value naming the kernel object.
public struct SemaphoreSet: IPCObject, Hashable {
  /// ``IPCObjectKind/semaphore``: a set is the kernel's semaphore object.
  public static var objectKind: IPCObjectKind { .semaphore }

  /// The key passed when opening or creating (or the random one drawn for `key: nil`; read
  /// from the kernel, `sem_perm.__key`, when opened by id).
  public let key: IPCKey
  /// The kernel's id for the set (`semget`'s result).
  public let id: Int32
  /// The number of semaphores in the set (`sem_nsems`).
  public let count: Int

  /// Opens or creates a set by key (`semget(key, count, flags | mode)`).
  ///
  /// - Parameters:
  ///   - key: the key; `nil` draws an unused random key and needs ``IPCFlags/createExclusive``.
  ///   - count: the number of semaphores of a new set (1...`semmsl`). When opening an existing
  ///     set it may be 0 or at most the set's size; ``count`` then is the set's real size.
  ///   - flags: as for ``Semaphore/init(key:flags:mode:initialValue:)``. A new set's values
  ///     are 0; set them with ``setValues(_:)``, or use
  ///     ``openOrCreate(key:count:initialValues:mode:timeout:)`` when processes race to create.
  ///   - mode: permission bits for a new set; for an existing one, the access asked for.
  /// - Throws: ``IPCError/Kind/invalidArgument`` for a count outside the kernel's limits or
  ///   larger than an existing set, and the errors of ``Semaphore``'s initializer.
  public init(key: IPCKey?, count: Int, flags: IPCFlags = [], mode: IPCPermissions = 0o600)
    throws(IPCError)
  {
    guard count >= 0, count <= Int(Int32.max) else {
      throw .invalid("semget: count \(count) is negative or too large")
    }
    if count == 0 && flags.contains(.create) {
      throw .invalid("semget: a new set needs a count of at least 1")
    }
    let opened: OpenedObject
    do {
      opened = try IPCObjectKind.semaphore.open(key: key, flags: flags, mode: mode) {
        system_semget($0, Int32(count), $1)
      }
    } catch {
      throw Self.explainingCount(error, key: key, count: count)
    }
    try self.init(id: opened.id, key: opened.key, removeOnFailure: opened.created)
  }

  /// Rewrites `semget`'s bare `EINVAL` into what was wrong with the count: larger than the
  /// existing set's, or above the system's largest set (`semmsl`).
  private static func explainingCount(_ error: IPCError, key: IPCKey?, count: Int) -> IPCError {
    guard error.kind == .invalidArgument, error.errno == .invalidArgument else { return error }
    let subject = key.map { "semget on semaphore with key \($0)" } ?? "semget"
    if let key, key != .private {
      let existing = system_semget(key.rawValue, 0, 0)
      if existing >= 0, let status = try? IPCObjectKind.semaphore.semaphoreStatus(id: existing) {
        return IPCError(
          .invalidArgument,
          "\(subject): count \(count) is larger than the existing set's \(status.nsems) "
            + "semaphores; open it with count 0 (any size) or at most \(status.nsems)",
          errno: error.errno)
      }
    }
    if let limits = systemLimits(), limits.semmsl >= 0, Int64(count) > limits.semmsl {
      return IPCError(
        .invalidArgument,
        "\(subject): count \(count) is above the system's largest set (semmsl, "
          + "\(limits.semmsl) semaphores)", errno: error.errno)
    }
    return IPCError(
      .invalidArgument, "\(subject): count \(count) is refused (invalid argument)",
      errno: error.errno)
  }

  /// Opens an existing set by id; ``key`` and ``count`` are read from the kernel
  /// (`semctl(IPC_STAT)`).
  public init(id: Int32) throws(IPCError) {
    let status = try IPCObjectKind.semaphore.semaphoreStatus(id: id)
    self.init(id: id, key: IPCKey(rawValue: status.perm.key), count: Int(clamping: status.nsems))
  }

  private init(id: Int32, key: IPCKey, removeOnFailure: Bool) throws(IPCError) {
    do {
      let status = try IPCObjectKind.semaphore.semaphoreStatus(id: id)
      self.init(id: id, key: key, count: Int(clamping: status.nsems))
    } catch {
      if removeOnFailure { try? IPCObjectKind.semaphore.remove(id: id) }
      throw error
    }
  }

  private init(id: Int32, key: IPCKey, count: Int) {
    self.id = id
    self.key = key
    self.count = count
  }

  // MARK: Operations

  /// One operation of ``apply(_:timeout:)-4bsy0``: a `struct sembuf`.
  public struct Operation: Hashable, Sendable {
    /// The semaphore's index in the set (`sem_num`).
    public var index: Int
    /// Negative: wait until the value is at least `-delta` and take it; positive: add it;
    /// 0: wait until the value is zero (`sem_op`, -32767...32767).
    public var delta: Int
    /// Fail with ``IPCError/Kind/busy`` instead of waiting (`IPC_NOWAIT`). When any operation
    /// of a call would wait and is non-blocking, the whole call fails and changes nothing.
    public var nonBlocking: Bool
    /// Undo this operation when the process exits (`SEM_UNDO`).
    public var undo: Bool

    /// An operation on semaphore `index` (`sem_num`) adding `delta` (`sem_op`), with
    /// `IPC_NOWAIT` when `nonBlocking` and `SEM_UNDO` when `undo` (`sem_flg`).
    public init(index: Int, delta: Int, nonBlocking: Bool = false, undo: Bool = false) {
      self.index = index
      self.delta = delta
      self.nonBlocking = nonBlocking
      self.undo = undo
    }
  }

  /// Applies `operations` atomically (`semop`, or `semtimedop` with a timeout): the process
  /// waits until all of them can proceed, then all happen at once; no other process ever sees
  /// some done and others not.
  ///
  /// - Parameters:
  ///   - operations: 1...`semopm` operations (32 by default on Linux, 500 on newer kernels).
  ///   - timeout: as in ``Semaphore/acquire(timeout:delta:)-3v0us``: `nil` waits as long as it
  ///     takes, `.zero` never waits, a positive timeout waits at most that long.
  /// - Throws: ``IPCError/Kind/busy`` when it would wait and may not (nothing changed),
  ///   ``IPCError/Kind/outOfRange`` for an index outside the set, a delta outside
  ///   -32767...32767, too many operations, or a result above ``Semaphore/maxValue``.
  public func apply(_ operations: [Operation], timeout: Duration? = nil) throws(IPCError) {
    let nanoseconds = try timeoutNanoseconds(timeout, "semop")
    try withOperations(operations) { (buffer) throws(IPCError) in
      try SemaphoreCall.perform(id: id, buffer, timeoutNanoseconds: nanoseconds, call: "semop")
    }
  }

  /// Converts and checks `operations` into `struct sembuf`s on the stack.
  func withOperations<R>(
    _ operations: [Operation],
    _ body: (UnsafeMutableBufferPointer<csysvipc_sembuf>) throws(IPCError) -> R
  ) throws(IPCError) -> R {
    guard !operations.isEmpty else { throw .invalid("semop: no operations") }
    for operation in operations {
      try checkIndex(operation.index, "semop")
      guard operation.delta.magnitude <= UInt(SemaphoreCall.maxDelta) else {
        throw .outOfRange(
          "semop: delta \(operation.delta) is outside -\(SemaphoreCall.maxDelta)...\(SemaphoreCall.maxDelta)"
        )
      }
    }
    let result: Result<R, IPCError> = withUnsafeTemporaryAllocation(
      of: csysvipc_sembuf.self, capacity: operations.count
    ) { buffer in
      for (i, operation) in operations.enumerated() {
        buffer[i] = csysvipc_sembuf(
          number: UInt16(operation.index), operation: Int16(operation.delta),
          flags: SemaphoreCall.flags(block: !operation.nonBlocking, undo: operation.undo))
      }
      do throws(IPCError) { return .success(try body(buffer)) } catch { return .failure(error) }
    }
    return try result.get()
  }

  // MARK: Values

  /// Every value at once, as one atomic snapshot (`GETALL`).
  public func values() throws(IPCError) -> [Int] {
    var raw = [UInt16](repeating: 0, count: count)
    _ = try SemaphoreCall.control("semctl(GETALL)", id: id) { system_semctl(id, GETALL, &raw) }
    return raw.map(Int.init)
  }

  /// Sets every value at once (`SETALL`), waking the waiters it satisfies. Clears pending undos.
  ///
  /// - Throws: ``IPCError/Kind/invalidArgument`` unless there is exactly one value per
  ///   semaphore, ``IPCError/Kind/outOfRange`` for a value outside 0...``Semaphore/maxValue``.
  public func setValues(_ values: [Int]) throws(IPCError) {
    guard values.count == count else {
      throw .invalid("semctl(SETALL): \(values.count) values for a set of \(count)")
    }
    var raw = [UInt16]()
    raw.reserveCapacity(count)
    for value in values {
      raw.append(UInt16(try SemaphoreCall.checkedValue(value, "semctl(SETALL)")))
    }
    _ = try SemaphoreCall.control("semctl(SETALL)", id: id) { system_semctl(id, SETALL, &raw) }
  }

  /// The value of semaphore `index` (`GETVAL`).
  public func value(at index: Int) throws(IPCError) -> Int {
    try checkIndex(index, "semctl(GETVAL)")
    return Int(
      try SemaphoreCall.control("semctl(GETVAL)", id: id) {
        system_semctl(id, Int32(index), GETVAL)
      })
  }

  /// Sets the value of semaphore `index` (`SETVAL`).
  public func setValue(_ value: Int, at index: Int) throws(IPCError) {
    try checkIndex(index, "semctl(SETVAL)")
    let checked = try SemaphoreCall.checkedValue(value, "semctl(SETVAL)")
    _ = try SemaphoreCall.control("semctl(SETVAL)", id: id) {
      system_semctl(id, Int32(index), SETVAL, checked)
    }
  }

  /// How many processes wait for semaphore `index` to rise (`GETNCNT`).
  public func waitingForNonzero(at index: Int) throws(IPCError) -> Int {
    try checkIndex(index, "semctl(GETNCNT)")
    return Int(
      try SemaphoreCall.control("semctl(GETNCNT)", id: id) {
        system_semctl(id, Int32(index), GETNCNT)
      })
  }

  /// How many processes wait for semaphore `index` to be zero (`GETZCNT`).
  public func waitingForZero(at index: Int) throws(IPCError) -> Int {
    try checkIndex(index, "semctl(GETZCNT)")
    return Int(
      try SemaphoreCall.control("semctl(GETZCNT)", id: id) {
        system_semctl(id, Int32(index), GETZCNT)
      })
  }

  /// The last process to operate on semaphore `index` (`GETPID`).
  public func lastPID(at index: Int) throws(IPCError) -> pid_t {
    try checkIndex(index, "semctl(GETPID)")
    return try SemaphoreCall.control("semctl(GETPID)", id: id) {
      system_semctl(id, Int32(index), GETPID)
    }
  }

  private func checkIndex(_ index: Int, _ call: StaticString) throws(IPCError) {
    guard index >= 0, index < count else {
      throw .outOfRange("\(call) on semaphore \(id): index \(index) is outside 0..<\(count)")
    }
  }

  // MARK: Status

  /// The set's attributes from one `IPC_STAT`, and every value from one `GETALL`.
  public func status() throws(IPCError) -> Status {
    let ds = try IPCObjectKind.semaphore.semaphoreStatus(id: id)
    return Status(
      key: IPCKey(rawValue: ds.perm.key), id: id, count: Int(clamping: ds.nsems),
      mode: IPCPermissions(rawValue: ds.perm.mode & 0o777),
      uid: ds.perm.uid, gid: ds.perm.gid, cuid: ds.perm.cuid, cgid: ds.perm.cgid,
      lastOperationTime: date(fromKernelTime: ds.otime),
      lastChangeTime: date(fromKernelTime: ds.ctime), values: try values())
  }

  /// A snapshot of a set (`struct semid_ds` from `semctl(IPC_STAT)`, and `GETALL`; see
  /// ``status()``).
  public struct Status: Hashable, Sendable {
    /// The key (`sem_perm.__key`).
    public var key: IPCKey
    /// The id (`semget`'s result).
    public var id: Int32
    /// `sem_nsems`.
    public var count: Int
    /// The permission bits (`sem_perm.mode & 0o777`).
    public var mode: IPCPermissions
    /// The owner's user id (`sem_perm.uid`).
    public var uid: uid_t
    /// The owner's group id (`sem_perm.gid`).
    public var gid: gid_t
    /// The creator's user id (`sem_perm.cuid`).
    public var cuid: uid_t
    /// The creator's group id (`sem_perm.cgid`).
    public var cgid: gid_t
    /// `sem_otime`: the last successful `semop`; `nil` before the first.
    public var lastOperationTime: Date?
    /// `sem_ctime`: creation or the last `IPC_SET`/`SETVAL`/`SETALL`.
    public var lastChangeTime: Date?
    /// Every value (`GETALL`).
    public var values: [Int]
  }
}
