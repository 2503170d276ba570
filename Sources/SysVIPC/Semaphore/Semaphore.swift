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

/// A System V semaphore: a counter shared between processes, that waits to go down
/// (`semget`, `semop`, `semctl` on a set of one).
///
/// ```swift
/// let lock = try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
/// defer { try? lock.remove() }
/// try lock.withAcquired {
///   // critical section
/// }
/// ```
///
/// `Semaphore` is a small value (key, id and two local settings) and `Sendable`: copies name
/// the same kernel object. The object outlives the process until someone calls ``remove()``.
///
/// - Note: where Foundation is imported on Linux, Glibc's `Semaphore` typealias is visible too;
///   write `SysVIPC.Semaphore` in type positions, or `import struct SysVIPC.Semaphore`.
public struct Semaphore: IPCObject, Hashable {
  /// ``IPCObjectKind/semaphore``: controlled with `semctl`.
  public static var objectKind: IPCObjectKind { .semaphore }

  /// The key passed to `semget` (or the random one drawn for `key: nil`; `sem_perm.__key` when
  /// opened by id).
  public let key: IPCKey
  /// The kernel's id for the semaphore (`semget`'s result).
  public let id: Int32
  /// Whether ``acquire(timeout:delta:)-3v0us`` and ``waitForZero(timeout:)-1nc8e`` may wait
  /// (default `true`). When `false` they throw ``IPCError/Kind/busy`` instead of waiting
  /// (`IPC_NOWAIT`). A local setting of this value, not of the kernel object.
  public var block: Bool = true
  /// Whether changes are undone when this process exits (`SEM_UNDO`; default `false`). A local
  /// setting of this value.
  public var undo: Bool = false

  /// Opens or creates a semaphore by key (`semget` with one semaphore).
  ///
  /// - Parameters:
  ///   - key: the key; `nil` draws an unused random key and needs ``IPCFlags/createExclusive``.
  ///   - flags: `[]` opens an existing semaphore, ``IPCFlags/create`` opens or creates,
  ///     ``IPCFlags/createExclusive`` creates or fails with ``IPCError/Kind/existential``.
  ///   - mode: permission bits for a new semaphore; for an existing one, the access asked for.
  ///   - initialValue: the value of a semaphore that this call creates (`SETVAL`); an existing
  ///     semaphore keeps its value. If setting it fails, the new semaphore is removed again.
  /// - Throws: ``IPCError/Kind/existential`` (no such semaphore / already exists),
  ///   ``IPCError/Kind/permissions``, ``IPCError/Kind/invalidArgument`` for refused flags, modes
  ///   or keys, or an existing set of more than one semaphore (open it as a ``SemaphoreSet``),
  ///   ``IPCError/Kind/outOfRange`` for an `initialValue` outside 0...``maxValue``.
  public init(
    key: IPCKey?, flags: IPCFlags = [], mode: IPCPermissions = 0o600, initialValue: Int = 0
  ) throws(IPCError) {
    let value = try SemaphoreCall.checkedValue(initialValue, "semget")
    let opened = try IPCObjectKind.semaphore.open(key: key, flags: flags, mode: mode) {
      system_semget($0, 1, $1)
    }
    self.key = opened.key
    self.id = opened.id
    if !opened.created {
      // semget(key, 1) also opens a larger set: refuse it, as init(id:) does. Without read
      // permission the count cannot be read (IPC_STAT); semop then meets the check itself.
      let status: csysvipc_sem_status?
      do {
        status = try IPCObjectKind.semaphore.semaphoreStatus(id: opened.id)
      } catch let error where error.kind == .permissions {
        status = nil
      }
      if let status, status.nsems != 1 { throw Self.notASetOfOne(id: opened.id, status.nsems) }
    }
    if opened.created && value != 0 {
      do {
        _ = try SemaphoreCall.control("semctl(SETVAL)", id: id) {
          system_semctl(opened.id, 0, SETVAL, value)
        }
      } catch {
        try? IPCObjectKind.semaphore.remove(id: opened.id)
        throw error
      }
    }
  }

  /// Opens an existing semaphore by id (Python cannot). The ``key`` is read from the kernel.
  ///
  /// - Throws: ``IPCError/Kind/existential`` when no semaphore has this id,
  ///   ``IPCError/Kind/permissions`` without read access, ``IPCError/Kind/invalidArgument`` for
  ///   a set of more than one semaphore (open it as a ``SemaphoreSet``).
  public init(id: Int32) throws(IPCError) {
    let status = try IPCObjectKind.semaphore.semaphoreStatus(id: id)
    guard status.nsems == 1 else { throw Self.notASetOfOne(id: id, status.nsems) }
    self.key = IPCKey(rawValue: status.perm.key)
    self.id = id
  }

  private static func notASetOfOne(id: Int32, _ count: UInt64) -> IPCError {
    .invalid("semaphore \(id) is a set of \(count); open it as a SemaphoreSet")
  }

  // MARK: Operations

  /// Waits until the value is at least `delta`, then decreases it by `delta` (`semop` with
  /// `-delta`, or `semtimedop`).
  ///
  /// - Parameters:
  ///   - timeout: `nil` waits as long as it takes (or not at all when ``block`` is `false`);
  ///     `.zero` never waits; a positive timeout waits at most that long. A signal does not
  ///     interrupt the wait, nor extend it.
  ///   - delta: how much to take, 1...32767 (its magnitude is used, as in Python).
  /// - Throws: ``IPCError/Kind/busy`` when it would have to wait and may not, or the timeout
  ///   expired; ``IPCError/Kind/existential`` when the semaphore is removed, also while waiting.
  @inlinable
  public func acquire(timeout: Duration? = nil, delta: Int = 1) throws(IPCError) {
    // The common call, inlined into the caller: one semop, nothing else on success.
    if timeout == nil && delta == 1 {
      if system_semop1(id, -1, SemaphoreCall.flags(block: block, undo: undo)) == 0 { return }
      return try _singleOperationFailed(-1)
    }
    try _acquire(timeout: timeout, delta: delta)
  }

  @usableFromInline
  func _acquire(timeout: Duration?, delta: Int) throws(IPCError) {
    try operate(-Int(try SemaphoreCall.magnitude(delta, "semop")), timeout: timeout)
  }

  /// After a failed `system_semop1`: EINTR retries through the shared loop; any other errno
  /// is mapped as everywhere else.
  @usableFromInline
  @inline(never)
  func _singleOperationFailed(_ operation: Int16) throws(IPCError) {
    let error = currentErrno
    guard error == .interrupted else {
      throw IPCError.system(error, IPCOperation("semop", .semaphore, id: id))
    }
    try operate(Int(operation), timeout: nil)
  }

  /// Increases the value by `delta` (`semop` with `+delta`), waking waiters.
  ///
  /// - Throws: ``IPCError/Kind/outOfRange`` when the value would exceed ``maxValue`` (the value
  ///   is unchanged).
  @inlinable
  public func release(delta: Int = 1) throws(IPCError) {
    if delta == 1 {
      if system_semop1(id, 1, SemaphoreCall.flags(block: block, undo: undo)) == 0 { return }
      return try _singleOperationFailed(1)
    }
    try _release(delta: delta)
  }

  @usableFromInline
  func _release(delta: Int) throws(IPCError) {
    try operate(Int(try SemaphoreCall.magnitude(delta, "semop")), timeout: nil)
  }

  /// Waits until the value is zero (`semop` with 0). `timeout` as in
  /// ``acquire(timeout:delta:)-3v0us``.
  public func waitForZero(timeout: Duration? = nil) throws(IPCError) {
    try operate(0, timeout: timeout)
  }

  /// Dijkstra's name for ``acquire(timeout:delta:)-3v0us`` (`semop` with `-delta`).
  public func P(timeout: Duration? = nil, delta: Int = 1) throws(IPCError) {
    try acquire(timeout: timeout, delta: delta)
  }

  /// Dijkstra's name for ``release(delta:)`` (`semop` with `+delta`).
  public func V(delta: Int = 1) throws(IPCError) { try release(delta: delta) }

  /// A synonym for ``waitForZero(timeout:)-1nc8e`` (`semop` with 0).
  public func Z(timeout: Duration? = nil) throws(IPCError) { try waitForZero(timeout: timeout) }

  /// Acquires, runs `body`, and releases, also when `body` throws (two `semop` calls): Python's
  /// context manager.
  ///
  /// - Returns: what `body` returns.
  /// - Throws: the ``IPCError`` of acquiring or releasing, or what `body` throws (which wins
  ///   over a failure to release).
  public func withAcquired<R>(
    timeout: Duration? = nil, delta: Int = 1, _ body: () throws -> R
  ) throws -> R {
    try acquire(timeout: timeout, delta: delta)
    let result: R
    do {
      result = try body()
    } catch {
      try? release(delta: delta)
      throw error
    }
    try release(delta: delta)
    return result
  }

  @inline(__always)
  private func operate(_ delta: Int, timeout: Duration?) throws(IPCError) {
    let nanoseconds = try timeoutNanoseconds(timeout, "semop")
    var op = csysvipc_sembuf(
      number: 0, operation: Int16(delta), flags: SemaphoreCall.flags(block: block, undo: undo))
    try withUnsafeMutablePointer(to: &op) { (pointer) throws(IPCError) in
      try SemaphoreCall.perform(
        id: id, UnsafeMutableBufferPointer(start: pointer, count: 1),
        timeoutNanoseconds: nanoseconds, call: "semop")
    }
  }

  // MARK: Value and attributes

  /// The current value (`GETVAL`).
  public var value: Int {
    get throws(IPCError) {
      Int(try SemaphoreCall.control("semctl(GETVAL)", id: id) { system_semctl(id, 0, GETVAL) })
    }
  }

  /// Sets the value (`SETVAL`), waking waiters it satisfies. `SETVAL` clears every process's
  /// pending undo for this semaphore.
  ///
  /// - Throws: ``IPCError/Kind/outOfRange`` for a value outside 0...``maxValue``.
  public func setValue(_ value: Int) throws(IPCError) {
    let checked = try SemaphoreCall.checkedValue(value, "semctl(SETVAL)")
    _ = try SemaphoreCall.control("semctl(SETVAL)", id: id) {
      system_semctl(id, 0, SETVAL, checked)
    }
  }

  /// The process that last changed or waited on the value (`GETPID`).
  public var lastPID: pid_t {
    get throws(IPCError) {
      try SemaphoreCall.control("semctl(GETPID)", id: id) { system_semctl(id, 0, GETPID) }
    }
  }

  /// How many processes wait in ``acquire(timeout:delta:)-3v0us`` (`GETNCNT`).
  public var waitingForNonzero: Int {
    get throws(IPCError) {
      Int(try SemaphoreCall.control("semctl(GETNCNT)", id: id) { system_semctl(id, 0, GETNCNT) })
    }
  }

  /// How many processes wait in ``waitForZero(timeout:)-1nc8e`` (`GETZCNT`).
  public var waitingForZero: Int {
    get throws(IPCError) {
      Int(try SemaphoreCall.control("semctl(GETZCNT)", id: id) { system_semctl(id, 0, GETZCNT) })
    }
  }

  /// When `semop` last completed on the semaphore (`sem_otime`); `nil` before the first.
  public var lastOperationTime: Date? {
    get throws(IPCError) {
      date(fromKernelTime: try IPCObjectKind.semaphore.semaphoreStatus(id: id).otime)
    }
  }

  /// When the semaphore was created or its owner, mode or value last set (`sem_ctime`).
  public var lastChangeTime: Date? {
    get throws(IPCError) {
      date(fromKernelTime: try IPCObjectKind.semaphore.semaphoreStatus(id: id).ctime)
    }
  }

  /// Everything about the semaphore at one moment: one `IPC_STAT`, then `GETVAL`, `GETPID`,
  /// `GETNCNT` and `GETZCNT`.
  public func status() throws(IPCError) -> Status {
    let ds = try IPCObjectKind.semaphore.semaphoreStatus(id: id)
    return Status(
      key: IPCKey(rawValue: ds.perm.key), id: id,
      mode: IPCPermissions(rawValue: ds.perm.mode & 0o777),
      uid: ds.perm.uid, gid: ds.perm.gid, cuid: ds.perm.cuid, cgid: ds.perm.cgid,
      rawOperationTime: ds.otime, rawChangeTime: ds.ctime,
      value: try value, lastPID: try lastPID,
      waitingForNonzero: try waitingForNonzero, waitingForZero: try waitingForZero)
  }

  /// A snapshot of a semaphore's attributes (`struct semid_ds` from `semctl(IPC_STAT)`, and the
  /// `GET*` values; see ``status()``).
  public struct Status: Hashable, Sendable {
    /// The key (`sem_perm.__key`).
    public var key: IPCKey
    /// The id (`semget`'s result).
    public var id: Int32
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
    var rawOperationTime: Int64
    var rawChangeTime: Int64
    /// The value (`GETVAL`).
    public var value: Int
    /// The last process to operate on it (`GETPID`).
    public var lastPID: pid_t
    /// Processes waiting for the value to rise (`GETNCNT`).
    public var waitingForNonzero: Int
    /// Processes waiting for zero (`GETZCNT`).
    public var waitingForZero: Int
    /// `sem_otime`; `nil` before the first `semop`.
    public var lastOperationTime: Date? { date(fromKernelTime: rawOperationTime) }
    /// `sem_ctime`.
    public var lastChangeTime: Date? { date(fromKernelTime: rawChangeTime) }
  }

  // MARK: System values

  /// The largest value a semaphore can hold (`SEMVMX`, Python's `SEMAPHORE_VALUE_MAX`), read
  /// from the kernel (`IPC_INFO`); 32767 on Linux.
  public static var maxValue: Int { SemaphoreCall.maxValue }

  /// Whether timed waits are supported (Python's `SEMAPHORE_TIMEOUT_SUPPORTED`). Always `true`:
  /// Linux has `semtimedop`; on macOS a signal ends `semop` at the deadline (see
  /// <doc:PlatformNotes>).
  public static var timeoutSupported: Bool { true }
}
