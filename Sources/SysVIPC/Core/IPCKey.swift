import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The key that names a System V IPC object (`key_t`).
///
/// Processes that agree on a key share the object. Pass `nil` wherever a key is asked for,
/// together with ``IPCFlags/createExclusive``, to have an unused key drawn from the system's
/// secure random generator; read the object's ``Semaphore/key`` to tell it to others.
///
/// ```swift
/// let key: IPCKey = 0x5359_5356
/// let semaphore = try Semaphore(key: key, flags: .createExclusive)
/// ```
public struct IPCKey: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral,
  CustomStringConvertible
{
  /// The `key_t` value.
  public let rawValue: Int32

  /// A key from its `key_t` value.
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// A key (`key_t`) from an integer literal, such as `let key: IPCKey = 42`.
  public init(integerLiteral value: Int32) { self.rawValue = value }

  /// `IPC_PRIVATE`: always creates a new object that no other key can open.
  ///
  /// Only the creator (and processes it passes the ``Semaphore/id`` to) can use the object. It
  /// cannot open an existing object: passing it without ``IPCFlags/create`` is refused with
  /// ``IPCError/Kind/invalidArgument`` instead of silently creating a new one.
  public static let `private` = IPCKey(rawValue: 0)

  /// The smallest `key_t` (Python's `KEY_MIN`).
  public static let min = IPCKey(rawValue: Int32.min)
  /// The largest `key_t` (Python's `KEY_MAX`).
  public static let max = IPCKey(rawValue: Int32.max)

  /// The key in hexadecimal, as `ipcs` prints `key_t`: `0x0000002a`.
  public var description: String {
    let hex = String(UInt32(bitPattern: rawValue), radix: 16)
    return "0x" + String(repeating: "0", count: Swift.max(0, 8 - hex.count)) + hex
  }

  /// A key from a file's identity and a project number: C's `ftok()`.
  ///
  /// - Important: `ftok` is weak. It mixes only the low bits of the file's device and inode
  ///   numbers with `projectID`, so two different files can give the same key, and a key says
  ///   nothing about whether another program already uses it. Prefer a random key
  ///   (`key: nil` with ``IPCFlags/createExclusive``) and pass it on, or a fixed key your
  ///   programs agree on. The `ftok_experiment` demo counts collisions on a real directory.
  ///
  /// - Parameters:
  ///   - path: an existing file or directory.
  ///   - projectID: 1...255; `ftok` uses only its low 8 bits, so larger values are refused
  ///     rather than silently truncated.
  /// - Throws: ``IPCError/Kind/existential`` when `path` does not exist,
  ///   ``IPCError/Kind/invalidArgument`` for a `projectID` outside 1...255 or a `path` with a
  ///   NUL byte (C would read only the part before it: another file's key).
  public init(path: String, projectID: Int32) throws(IPCError) {
    guard (1...255).contains(projectID) else {
      throw .invalid("ftok: projectID \(projectID) is outside 1...255")
    }
    guard !path.utf8.contains(0) else {
      throw .invalid("ftok: the path contains a NUL byte; C would use only the part before it")
    }
    let key = system_ftok(path, projectID)
    if key == -1 {
      throw IPCError.system(currentErrno, IPCOperation("ftok"), subject: "ftok on \(path)")
    }
    self.rawValue = key
  }

  /// A key drawn from the system's secure random generator over `1...Int32.max`.
  static func random() -> IPCKey {
    var generator = SystemRandomNumberGenerator()
    return IPCKey(rawValue: Int32.random(in: 1...Int32.max, using: &generator))
  }
}

/// How an initializer opens or creates an object: `IPC_CREAT`, `IPC_EXCL` and the
/// Linux-only shared-memory creation flags.
///
/// `[]` opens an existing object and fails with ``IPCError/Kind/existential`` when there is none.
public struct IPCFlags: OptionSet, Hashable, Sendable {
  /// The flag bits (`IPC_CREAT`, `IPC_EXCL`, `SHM_HUGETLB`, `SHM_NORESERVE`) of a `*get` call.
  public let rawValue: Int32
  /// Flags from their bits; bits the object kind does not accept are refused when used.
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// `IPC_CREAT`: create the object when it does not exist, else open it.
  ///
  /// Opening-or-creating cannot tell the caller which happened in C; this package can (it tries
  /// to create exclusively first) and applies initial values only to an object it created.
  public static let create = IPCFlags(rawValue: IPC_CREAT)
  /// `IPC_EXCL`: with ``create``, fail with ``IPCError/Kind/existential`` when the object exists.
  /// Alone it is refused.
  public static let exclusive = IPCFlags(rawValue: IPC_EXCL)
  /// `IPC_CREX` in Python: `IPC_CREAT | IPC_EXCL`, create a new object or fail.
  public static let createExclusive: IPCFlags = [.create, .exclusive]
  #if os(Linux)
    /// `SHM_HUGETLB` (Linux, shared memory only): back the segment with huge pages.
    public static let hugePages = IPCFlags(rawValue: SHM_HUGETLB)
    /// `SHM_NORESERVE` (Linux, shared memory only): do not reserve swap space for the segment.
    public static let noReserve = IPCFlags(rawValue: SHM_NORESERVE)

    /// The flags only shared memory accepts.
    static let sharedMemoryOnly: IPCFlags = [.hugePages, .noReserve]
  #else
    // No such flags elsewhere: rather than flags that would silently do nothing.
    static let sharedMemoryOnly: IPCFlags = []
  #endif
}

/// The nine permission bits of an object (`ipc_perm.mode`), such as `0o600`.
///
/// Write `mode: 0o600` where a mode is asked for. Bits outside `0o777` are refused with
/// ``IPCError/Kind/invalidArgument``, never passed on into the call's flags. When an existing
/// object is opened, the mode is the access asked for: opening another user's `0o600` object with
/// the default mode fails with ``IPCError/Kind/permissions``.
public struct IPCPermissions: OptionSet, Hashable, Sendable, ExpressibleByIntegerLiteral,
  CustomStringConvertible
{
  /// The bits of `ipc_perm.mode`, such as `0o600`.
  public let rawValue: UInt32
  /// Permissions from their bits; bits outside `0o777` are refused when used.
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  /// Permissions from an octal literal, such as `0o600`.
  public init(integerLiteral value: UInt32) { self.rawValue = value }

  /// `0o400` (`S_IRUSR`): the owner may read (`IPC_R` for the owner).
  public static let ownerRead: IPCPermissions = 0o400
  /// `0o200` (`S_IWUSR`): the owner may write, or alter a semaphore (`IPC_W` for the owner).
  public static let ownerWrite: IPCPermissions = 0o200
  /// `0o040` (`S_IRGRP`): the group may read.
  public static let groupRead: IPCPermissions = 0o040
  /// `0o020` (`S_IWGRP`): the group may write.
  public static let groupWrite: IPCPermissions = 0o020
  /// `0o004` (`S_IROTH`): others may read.
  public static let otherRead: IPCPermissions = 0o004
  /// `0o002` (`S_IWOTH`): others may write.
  public static let otherWrite: IPCPermissions = 0o002
  /// `0o600` (`S_IRUSR | S_IWUSR`), the default for every object kind: only the owner may read
  /// and write.
  public static let ownerReadWrite: IPCPermissions = 0o600

  /// The mode in octal: `0o600`.
  public var description: String { "0o" + String(rawValue, radix: 8) }

  /// Refuses bits outside `0o777`.
  func validated(_ operation: StaticString) throws(IPCError) -> Int32 {
    guard rawValue & ~0o777 == 0 else {
      throw .invalid("\(operation): mode \(self) has bits outside 0o777")
    }
    return Int32(rawValue)
  }
}
