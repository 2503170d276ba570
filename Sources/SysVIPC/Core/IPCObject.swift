import CSysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// What every System V IPC object shares: a key, an id, an owner, permission bits, removal.
///
/// ``Semaphore``, ``SemaphoreSet``, ``SharedMemory`` and ``MessageQueue`` conform, so code can
/// treat them alike, for example to check ownership before trusting an object found at a
/// well-known key.
public protocol IPCObject: Sendable {
  /// The kind of object: which of `semctl`, `shmctl` or `msgctl` controls it.
  static var objectKind: IPCObjectKind { get }
  /// The key (`key_t`) the object was opened or created with (``IPCKey/private`` when opened by id
  /// without a key, or created privately).
  var key: IPCKey { get }
  /// The kernel's identifier for the object (the result of `semget`, `shmget` or `msgget`).
  var id: Int32 { get }
}

extension IPCObject {
  /// The permission bits (`ipc_perm.mode & 0o777`, from `IPC_STAT`).
  public var mode: IPCPermissions {
    get throws(IPCError) {
      IPCPermissions(rawValue: try Self.objectKind.permissions(id: id).mode & 0o777)
    }
  }

  /// The owner's user id (`ipc_perm.uid`).
  public var uid: uid_t { get throws(IPCError) { try Self.objectKind.permissions(id: id).uid } }
  /// The owner's group id (`ipc_perm.gid`).
  public var gid: gid_t { get throws(IPCError) { try Self.objectKind.permissions(id: id).gid } }
  /// The creator's user id (`ipc_perm.cuid`).
  public var cuid: uid_t { get throws(IPCError) { try Self.objectKind.permissions(id: id).cuid } }
  /// The creator's group id (`ipc_perm.cgid`).
  public var cgid: gid_t { get throws(IPCError) { try Self.objectKind.permissions(id: id).cgid } }

  /// Sets the permission bits (`IPC_SET`). Only the owner, the creator or a privileged process
  /// may; others get ``IPCError/Kind/permissions``.
  public func setMode(_ mode: IPCPermissions) throws(IPCError) {
    try Self.objectKind.set(id: id, mode: mode)
  }

  /// Sets the owner (`IPC_SET` of `uid` and `gid`; `nil` keeps the current one).
  /// Giving an object away needs privilege or ownership, as for ``setMode(_:)``.
  public func setOwner(uid: uid_t? = nil, gid: gid_t? = nil) throws(IPCError) {
    let checkedUID = try uid.map { (u) throws(IPCError) in try validatedOwnerID(u, "uid") }
    let checkedGID = try gid.map { (g) throws(IPCError) in try validatedOwnerID(g, "gid") }
    try Self.objectKind.set(id: id, uid: checkedUID, gid: checkedGID)
  }

  /// Removes the object from the system (`IPC_RMID`).
  ///
  /// Waiters are woken with ``IPCError/Kind/existential``; shared memory lives on until its last
  /// detach. Every later call on this id throws ``IPCError/Kind/existential``.
  public func remove() throws(IPCError) { try Self.objectKind.remove(id: id) }

  /// Removes the object with the given id (Python's `remove_semaphore`,
  /// `remove_shared_memory`, `remove_message_queue`).
  public static func remove(id: Int32) throws(IPCError) { try objectKind.remove(id: id) }

  /// Checks that the object belongs to whom the caller expects, before trusting it.
  ///
  /// Anyone may create an object at a well-known key first ("squatting") and then read or
  /// forge what others exchange through it. Call this after opening by key: it throws
  /// ``IPCError/Kind/permissions`` when the owner or creator is not `uid` (by default this
  /// process's effective user), or when the mode grants more than `allowedMode`.
  public func verifyOwner(uid: uid_t = geteuid(), allowedMode: IPCPermissions = 0o777)
    throws(IPCError)
  {
    let perm = try Self.objectKind.permissions(id: id)
    guard perm.uid == uid, perm.cuid == uid else {
      throw IPCError(
        .permissions,
        "\(Self.objectKind.name) \(id) is owned by uid \(perm.uid) (created by uid \(perm.cuid)), "
          + "not by the expected uid \(uid)")
    }
    let extra = perm.mode & 0o777 & ~allowedMode.rawValue
    guard extra == 0 else {
      throw IPCError(
        .permissions,
        "\(Self.objectKind.name) \(id) has mode \(IPCPermissions(rawValue: perm.mode & 0o777)), "
          + "more than the allowed \(allowedMode)")
    }
  }
}
