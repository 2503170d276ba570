import CSysVIPC

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

/// One System V IPC object as the kernel lists it: what `ipcs` shows, and more.
///
/// ``IPCSystem/objects()`` returns one for every semaphore set, shared memory segment and
/// message queue on the system; ``IPCSystem/object(_:id:)`` reads one by id. Each is a snapshot
/// taken with one `*_STAT` call: the object may have changed or gone since.
///
/// The properties that only one kind has are `nil` for the others: ``semaphoreCount`` for
/// semaphore sets; ``size``, ``attachCount``, ``creatorPID`` and the attach times for shared
/// memory; ``messageCount``, ``messageBytes``, ``maxQueueBytes`` and the send and receive
/// details for message queues.
public struct IPCObjectInfo: Hashable, Sendable {
  /// The kind of object: which `*_STAT` call read it.
  public var kind: IPCObjectKind
  /// The key (`ipc_perm.__key`). A removed segment that is still attached shows
  /// ``IPCKey/private``.
  public var key: IPCKey
  /// The kernel's id, as the object's `init(id:)` and `remove(id:)` take it. Ids are unique
  /// within a kind only: a semaphore and a queue may share one.
  public var id: Int32
  /// The permission bits (`ipc_perm.mode & 0o777`).
  public var mode: IPCPermissions
  /// The owner's user id (`ipc_perm.uid`).
  public var uid: uid_t
  /// The owner's group id (`ipc_perm.gid`).
  public var gid: gid_t
  /// The creator's user id (`ipc_perm.cuid`).
  public var cuid: uid_t
  /// The creator's group id (`ipc_perm.cgid`).
  public var cgid: gid_t
  /// When the object was created or last changed by `IPC_SET` (`*_ctime`).
  public var lastChangeTime: Date?

  // MARK: Semaphore sets

  /// The number of semaphores in the set (`sem_nsems`); 1 for a ``Semaphore``.
  public var semaphoreCount: Int?
  /// When `semop` last completed on the set (`sem_otime`); `nil` before the first.
  public var lastOperationTime: Date?

  // MARK: Shared memory

  /// The segment's size in bytes (`shm_segsz`).
  public var size: Int?
  /// How many attachments the segment has (`shm_nattch`).
  public var attachCount: Int?
  /// The process that created the segment (`shm_cpid`).
  public var creatorPID: pid_t?
  /// The last process to attach or detach (`shm_lpid`).
  public var lastPID: pid_t?
  /// When the segment was last attached (`shm_atime`).
  public var lastAttachTime: Date?
  /// When the segment was last detached (`shm_dtime`).
  public var lastDetachTime: Date?
  /// Whether the segment was removed and lives on only until its last detach (`SHM_DEST` in
  /// `shm_perm.mode`); `ipcs` shows it as `dest`. Always `false` for the other kinds.
  public var isMarkedForRemoval: Bool

  // MARK: Message queues

  /// The number of messages on the queue (`msg_qnum`).
  public var messageCount: Int?
  /// The bytes of message text on the queue (`msg_cbytes`).
  public var messageBytes: Int?
  /// The most bytes the queue may hold (`msg_qbytes`).
  public var maxQueueBytes: Int?
  /// The last process to send (`msg_lspid`).
  public var lastSendPID: pid_t?
  /// The last process to receive (`msg_lrpid`).
  public var lastReceivePID: pid_t?
  /// When a message was last sent (`msg_stime`).
  public var lastSendTime: Date?
  /// When a message was last received (`msg_rtime`).
  public var lastReceiveTime: Date?

  init(kind: IPCObjectKind, id: Int32, perm: csysvipc_perm, ctime: Int64) {
    self.kind = kind
    self.key = IPCKey(rawValue: perm.key)
    self.id = id
    self.mode = IPCPermissions(rawValue: perm.mode & 0o777)
    self.uid = perm.uid
    self.gid = perm.gid
    self.cuid = perm.cuid
    self.cgid = perm.cgid
    self.lastChangeTime = date(fromKernelTime: ctime)
    self.isMarkedForRemoval = false
  }
}
