import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// An error from a System V IPC operation.
///
/// Every throwing API of this package throws `IPCError`. ``kind`` says what went wrong in terms a
/// caller can act on (the object is gone, access was denied, the call would have blocked); ``errno``
/// carries the operating system's error when there was one; ``message`` names the operation and
/// the object, for example `semop on semaphore 3: removed while waiting`.
///
/// The mapping from `errno` to ``Kind`` is the same for every object kind; the DocC article
/// "Errors" lists it.
public struct IPCError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The kinds of failure, after Python `sysv_ipc`'s exception classes; the article "Errors"
  /// says which `errno` leads to each.
  public enum Kind: Hashable, Sendable, CustomStringConvertible {
    /// The object does not exist, no longer exists, or already exists
    /// (`ENOENT`, `EIDRM`, `EEXIST`; `EINVAL` for an id that names no object).
    /// Python: `ExistentialError`.
    case existential
    /// The object's permissions or the caller's privileges forbid the operation
    /// (`EACCES`, `EPERM`). Python: `PermissionsError`.
    case permissions
    /// The operation would have had to wait and was not allowed to, or its timeout expired
    /// (`EAGAIN`, `ENOMSG`). Python: `BusyError`.
    case busy
    /// Shared memory was accessed, or `shmdt` called, while not attached (no `shmat` mapping).
    /// Python: `NotAttachedError`.
    case notAttached
    /// An argument was refused before any system call, or the kernel refused it (`EINVAL`).
    /// Python: `ValueError` / `TypeError`.
    case invalidArgument
    /// A value does not fit: a semaphore value or delta out of range (`ERANGE`), a message
    /// larger than a buffer or a limit (`E2BIG`).
    case outOfRange
    /// Any other error from the operating system; ``IPCError/errno`` says which.
    case system
    /// A defect in this package, or a race it gave up on; no `errno` maps here. Please report it.
    case `internal`

    /// The kind's name: `busy`, `existential`, ... (as the test helper prints it).
    public var description: String {
      switch self {
      case .existential: "existential"
      case .permissions: "permissions"
      case .busy: "busy"
      case .notAttached: "notAttached"
      case .invalidArgument: "invalidArgument"
      case .outOfRange: "outOfRange"
      case .system: "system"
      case .internal: "internal"
      }
    }
  }

  /// What went wrong, mapped from ``errno`` for failed system calls.
  public let kind: Kind
  /// The operating system's error (`errno`), when the failure came from a system call; `nil`
  /// when an argument was refused before any call.
  public let errno: Errno?
  /// A message naming the operation (the C call, such as `semop`) and the object.
  public let message: String

  /// Creates an error. Library users rarely need this; it is public so that code built on this
  /// package can report failures the same way.
  public init(_ kind: Kind, _ message: String, errno: Errno? = nil) {
    self.kind = kind
    self.message = message
    self.errno = errno
  }

  /// The ``message``, followed by the ``errno`` in brackets when there is one.
  public var description: String {
    if let errno { return "\(message) [\(errno)]" }
    return message
  }
}

// MARK: - The errno mapping

/// What a failing call was doing, for the error message: "semop on semaphore 3".
///
/// Built on every call, so it holds no `String`: nothing is allocated until an error is made.
struct IPCOperation: Sendable {
  /// The C call, such as `semop`.
  var call: StaticString
  /// The kind of object; `nil` for a call on a file (`ftok`).
  var object: IPCObjectKind?
  /// The object's id once it exists; `nil` for the *get calls.
  var id: Int32?
  /// The key, for the *get calls.
  var key: IPCKey?

  init(_ call: StaticString, _ object: IPCObjectKind, id: Int32) {
    self.call = call
    self.object = object
    self.id = id
  }

  init(_ call: StaticString, _ object: IPCObjectKind, key: IPCKey) {
    self.call = call
    self.object = object
    self.key = key
  }

  /// A call on no object (`ftok`): the caller names what it worked on in the message.
  init(_ call: StaticString) {
    self.call = call
  }

  /// "semop on semaphore 3", "semget on semaphore with key 0x0000002a".
  var subject: String {
    let name = object?.name ?? "object"
    if let id { return "\(call) on \(name) \(id)" }
    if let key { return "\(call) on \(name) with key \(key)" }
    return "\(call) on \(name)"
  }
}

extension IPCError {
  /// An error about an argument, refused before any system call.
  static func invalid(_ message: String) -> IPCError { IPCError(.invalidArgument, message) }

  /// An error for a value out of range, refused before any system call.
  static func outOfRange(_ message: String) -> IPCError { IPCError(.outOfRange, message) }

  /// The one errno-to-`IPCError` mapping, shared by every call of every object kind.
  /// `subject` replaces `op.subject` in the message (for `ftok`, which names a file: the file's
  /// path stays out of `IPCOperation`, which every call builds and must stay free of `String`).
  static func system(_ errno: Errno, _ op: IPCOperation, subject: String? = nil) -> IPCError {
    let (kind, reason): (Kind, String)
    switch errno.rawValue {
    case EEXIST: (kind, reason) = (.existential, "already exists")
    case ENOENT, ENOTDIR: (kind, reason) = (.existential, "does not exist")
    case EIDRM: (kind, reason) = (.existential, "removed while waiting")
    case EACCES: (kind, reason) = (.permissions, "permission denied")
    case EPERM: (kind, reason) = (.permissions, "operation not permitted")
    case EAGAIN: (kind, reason) = (.busy, "would block")
    case ENOMSG: (kind, reason) = (.busy, "no message of the requested type")
    case ERANGE: (kind, reason) = (.outOfRange, "value out of range")
    case E2BIG:
      // semop: more operations than semopm; msgsnd/msgrcv: a message too big.
      (kind, reason) =
        op.object == .semaphore
        ? (.outOfRange, "too many operations in one call (more than semopm)")
        : (.outOfRange, "message too big")
    case EINVAL:
      // For a call on an id, EINVAL usually means the id names no object (it was removed);
      // one IPC_STAT tells that apart from an argument the kernel refused.
      if let id = op.id, let object = op.object, !object.exists(id: id) {
        (kind, reason) = (.existential, "does not exist (removed?)")
      } else {
        (kind, reason) = (.invalidArgument, "invalid argument")
      }
    case ENOSPC: (kind, reason) = (.system, "system limit on objects reached")
    case ENOMEM: (kind, reason) = (.system, "not enough memory")
    default: (kind, reason) = (.system, "failed")
    }
    return IPCError(kind, "\(subject ?? op.subject): \(reason)", errno: errno)
  }
}

// MARK: Errors made without a system call

extension IPCError {
  /// Shared memory accessed, or detached, while not attached.
  static func notAttached(_ call: StaticString, id: Int32) -> IPCError {
    IPCError(.notAttached, "\(call) on shared memory \(id): not attached (call attach() first)")
  }

  /// attach / detach refused while accesses to the mapping run.
  static func busy(_ call: StaticString, id: Int32, _ accesses: Int) -> IPCError {
    IPCError(
      .busy,
      "\(call) on shared memory \(id): \(accesses) access(es) still running "
        + "(withUnsafeBytes and the like); the mapping stays until they return")
  }

  /// A write, or a mutable view, on a read-only attachment.
  static func readOnly(_ call: StaticString, id: Int32) -> IPCError {
    IPCError(
      .permissions,
      "\(call) on shared memory \(id): attached read-only (AttachFlags.readOnly, or opened "
        + "with a mode without 0o200)")
  }

  /// E2BIG from msgrcv, explained: the kernel left the message queued.
  static func tooLong(id: Int32, what: String) -> IPCError {
    let error = IPCError.system(.argListTooLong, IPCOperation("msgrcv", .messageQueue, id: id))
    return IPCError(
      error.kind,
      "msgrcv on message queue \(id): the message is longer than \(what); it stays queued "
        + "(receive it into a larger buffer, or pass .truncate to cut it)",
      errno: error.errno)
  }

  /// The error of an async wait whose task was cancelled: kind ``Kind/busy`` (the wait did not
  /// complete and changed nothing) with `errno` `ECANCELED`; see ``isCancellation``.
  static func cancelled(_ what: String) -> IPCError {
    IPCError(.busy, "\(what): cancelled", errno: .canceled)
  }

  /// The error of a wait whose timeout expired: kind ``Kind/busy``, "timed out after N s".
  static func timedOut(_ op: IPCOperation, nanoseconds: Int64, errno: Errno?) -> IPCError {
    IPCError(.busy, "\(op.subject): timed out after \(Double(nanoseconds) / 1e9) s", errno: errno)
  }

  /// Whether this error reports a cancelled task (kind ``Kind/busy``, `errno` `ECANCELED`) rather
  /// than a failure of the operation.
  public var isCancellation: Bool { kind == .busy && errno == .canceled }
}
