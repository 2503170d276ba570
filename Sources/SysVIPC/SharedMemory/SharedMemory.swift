import CSysVIPC
import Synchronization
import SystemPackage

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

/// A System V shared memory segment, attached to this process (`shmget`, `shmat`, `shmdt`,
/// `shmctl`).
///
/// ```swift
/// let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096)
/// defer { try? memory.remove() }
/// try memory.write("hello", offset: 0)
/// let bytes = try memory.read(count: 5)
/// try memory.withUnsafeMutableBytes { buffer in buffer[0] = 0x48 }  // no copy
/// ```
///
/// An instance is one attachment of the segment: it attaches on creation, may be detached and
/// attached again, and detaches by itself when the last reference goes away (Python never
/// does). The segment itself outlives the process until someone calls ``remove()``; the kernel
/// then keeps it until the last process detaches.
///
/// `SharedMemory` is a `Sendable` class: the attachment is guarded by a lock, and
/// ``detach()`` refuses with ``IPCError/Kind/busy`` while a zero-copy body such as
/// `withUnsafeBytes(_:)` runs, on any thread, so no access can
/// outlive its mapping. The bytes themselves are shared with other processes and are not
/// synchronized: use a ``Semaphore`` to order readers and writers.
public final class SharedMemory: IPCObject {
  /// ``IPCObjectKind/sharedMemory``: controlled with `shmctl`.
  public static var objectKind: IPCObjectKind { .sharedMemory }

  /// The key passed when opening or creating (or the random one drawn for `key: nil`; the
  /// segment's key, read from the kernel, for ``attach(id:address:flags:)``).
  public let key: IPCKey
  /// The kernel's id for the segment (`shmget`'s result).
  public let id: Int32
  /// The segment's size in bytes (`shm_segsz`, read once with `IPC_STAT`: it never changes).
  ///
  /// All bounds are this size, not the page-rounded size the kernel maps.
  public let size: Int

  /// The attachment and the accesses to it: see ``AccessGate`` for the invariants.
  let gate = AccessGate()

  /// Opens or creates a segment by key (`shmget`) and attaches it (`shmat`).
  ///
  /// - Parameters:
  ///   - key: the key; `nil` draws an unused random key and needs ``IPCFlags/createExclusive``.
  ///   - flags: `[]` opens an existing segment, ``IPCFlags/create`` opens or creates,
  ///     ``IPCFlags/createExclusive`` creates or fails with ``IPCError/Kind/existential``; add
  ///     ``IPCFlags/hugePages`` (`SHM_HUGETLB`) or ``IPCFlags/noReserve`` (`SHM_NORESERVE`) for
  ///     a new segment on Linux.
  ///   - mode: permission bits for a new segment; for an existing one, the access asked for.
  ///     As in Python, when `mode` lacks `0o200` the segment is attached read-only
  ///     (`SHM_RDONLY`): open another user's `0o644` segment with `mode: 0o444` to read it.
  ///   - size: the size in bytes. `nil` means ``pageSize`` with ``IPCFlags/createExclusive``,
  ///     else 0. A new segment needs at least 1 byte; an existing one is opened with any size up
  ///     to its own (0 always works), and ``size`` is then the segment's real size.
  ///   - initCharacter: the byte that fills a segment this call created, when it is attached
  ///     writable (Python fills only with `IPC_CREX`). An existing segment is never touched.
  ///     The kernel zero-fills new segments, so `0` skips the fill; any other value touches
  ///     every page of the segment.
  /// - Throws: ``IPCError/Kind/existential`` (no such segment / already exists),
  ///   ``IPCError/Kind/permissions``, ``IPCError/Kind/invalidArgument`` for a negative size, a
  ///   size of 0 for a segment that must be created, a size larger than the existing segment,
  ///   or refused flags, modes or keys; ``IPCError/Kind/outOfRange`` for a size above the
  ///   system's largest segment (`SHMMAX`) or `Int.max / 2`. When anything fails after this
  ///   call created the segment (reading its size, attaching), the segment is removed again.
  public init(
    key: IPCKey?, flags: IPCFlags = [], mode: IPCPermissions = 0o600, size: Int? = nil,
    initCharacter: UInt8 = 0x20
  ) throws(IPCError) {
    let requested = size ?? (flags.contains(.createExclusive) ? Self.pageSize : 0)
    try Self.checkRequestedSize(requested, key: key, flags: flags)
    let opened: OpenedObject
    do {
      opened = try IPCObjectKind.sharedMemory.open(
        key: key, flags: flags, mode: mode, extraFlags: IPCFlags.sharedMemoryOnly
      ) { system_shmget($0, requested, $1) }
    } catch {
      throw Self.explainingSize(error, key: key, size: requested)
    }
    let segmentSize: Int
    do {
      segmentSize = try Self.segmentSize(id: opened.id)
    } catch {
      if opened.created { try? IPCObjectKind.sharedMemory.remove(id: opened.id) }
      throw error
    }
    self.key = opened.key
    self.id = opened.id
    self.size = segmentSize
    // From here on deinit runs if this throws; it detaches whatever was attached.
    let readOnly = mode.rawValue & 0o200 == 0
    do {
      try attach(flags: readOnly ? .readOnly : [])
    } catch {
      if opened.created { try? IPCObjectKind.sharedMemory.remove(id: opened.id) }
      throw error
    }
    if opened.created && !readOnly && initCharacter != 0 {
      // No body can run yet: nobody else holds this object.
      let address = gate.current.address
      UnsafeMutableRawPointer(bitPattern: address)?.initializeMemory(
        as: UInt8.self, repeating: initCharacter, count: segmentSize)
    }
  }

  /// An object for a segment found by id, not yet attached.
  private init(id: Int32, key: IPCKey, size: Int) {
    self.id = id
    self.key = key
    self.size = size
  }

  /// Attaches the existing segment with this id (`shmat`): Python's module function `attach()`.
  ///
  /// The ``key`` and ``size`` are read from the kernel (`IPC_STAT`). The segment does not
  /// belong to the new object: it is not removed when anything fails.
  ///
  /// - Parameters:
  ///   - id: the segment's id, as the kernel gave it (``id``, `ipcs`, ``IPCSystem/objects()``).
  ///   - address: where to attach, or `nil` to let the kernel choose (see
  ///     ``attach(address:flags:)``).
  ///   - flags: ``AttachFlags/readOnly`` attaches read-only; see ``AttachFlags``.
  /// - Throws: ``IPCError/Kind/existential`` when no segment has this id,
  ///   ``IPCError/Kind/permissions`` without read access (and write access, unless
  ///   read-only), ``IPCError/Kind/invalidArgument`` for an address the kernel refuses.
  public static func attach(
    id: Int32, address: UnsafeRawPointer? = nil, flags: AttachFlags = []
  ) throws(IPCError) -> SharedMemory {
    let status = try IPCObjectKind.sharedMemory.sharedMemoryStatus(id: id)
    let memory = SharedMemory(
      id: id, key: IPCKey(rawValue: status.perm.key), size: try checkedSize(status.size, id: id))
    try memory.attach(address: address, flags: flags)
    return memory
  }

  deinit {
    let address = gate.current.address
    if address != 0 { _ = AttachedRanges.unmap(address) }
  }

  // MARK: Attaching

  /// How to attach a segment: the flags of `shmat`.
  public struct AttachFlags: OptionSet, Hashable, Sendable {
    /// The `shmflg` bits.
    public let rawValue: Int32
    /// Flags from `shmflg` bits; bits other than the three below are refused by
    /// ``SharedMemory/attach(address:flags:)``.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `SHM_RDONLY`: attach read-only. Writes and mutable access then throw
    /// ``IPCError/Kind/permissions`` (Python crashes); reading needs only read permission.
    public static let readOnly = AttachFlags(rawValue: SHM_RDONLY)
    /// `SHM_RND`: round an `address` down to a multiple of `SHMLBA` (the page size on most
    /// systems) instead of refusing an unaligned one.
    public static let roundAddress = AttachFlags(rawValue: SHM_RND)
    #if os(Linux)
      /// `SHM_REMAP` (Linux only: elsewhere it does not exist): replace any mapping at
      /// `address`, instead of failing with ``IPCError/Kind/invalidArgument``. Needs an
      /// `address`; refused over another `SharedMemory` attachment of this process (see
      /// ``SharedMemory/attach(address:flags:)``).
      public static let remap = AttachFlags(rawValue: SHM_REMAP)

      static let known: AttachFlags = [.readOnly, .roundAddress, .remap]
    #else
      static let known: AttachFlags = [.readOnly, .roundAddress]
    #endif
  }

  /// Attaches the segment to this process (`shmat`). The initializer already attached it: call
  /// this after ``detach()``, or to attach differently.
  ///
  /// Attaching while attached replaces the attachment: the old mapping is detached, never
  /// leaked (Python leaks it and the segment's attach count never returns to zero). Accesses on
  /// other threads never fail because of it: they use the old mapping until the new one is in
  /// place, and wait the few instructions of the swap. When the kernel chooses the address, the
  /// new mapping is made first, so a failure leaves the old one in place; with an `address`
  /// (which may overlap the old mapping) the old one is detached first, and a failure leaves the
  /// object detached.
  ///
  /// ``AttachFlags/remap`` (`SHM_REMAP`, Linux) lets the kernel replace whatever is mapped at
  /// `address`. This package refuses it over a range that another `SharedMemory` attachment of
  /// this process holds (that object would read the new segment's bytes, and its `shmdt` would
  /// unmap them). It cannot know the rest of the address space: over memory that is not a
  /// `SharedMemory` attachment (the heap, a stack, a library, another `mmap`), the mapping is
  /// replaced silently and whatever used it then reads the segment's bytes or crashes. Use it
  /// only over addresses your program reserved for this.
  ///
  /// - Parameters:
  ///   - address: where to attach; `nil` lets the kernel choose (`shmaddr` NULL).
  ///   - flags: ``AttachFlags/readOnly``, ``AttachFlags/roundAddress``, ``AttachFlags/remap``.
  /// - Throws: ``IPCError/Kind/busy`` while a zero-copy body runs on this object;
  ///   ``IPCError/Kind/invalidArgument`` for an unknown flag, ``AttachFlags/remap`` without an
  ///   address or over another attachment of this process, or an address the kernel refuses
  ///   (`EINVAL`); ``IPCError/Kind/permissions`` (`EACCES`); ``IPCError/Kind/existential`` when
  ///   the segment is gone.
  public func attach(address: UnsafeRawPointer? = nil, flags: AttachFlags = []) throws(IPCError) {
    guard AttachFlags.known.isSuperset(of: flags) else {
      throw .invalid(
        "shmat on shared memory \(id): unknown attach flags 0x\(String(flags.rawValue, radix: 16))")
    }
    #if os(Linux)
      let remap = flags.contains(.remap)
    #else
      let remap = false
    #endif
    if address == nil && remap {
      throw .invalid("shmat on shared memory \(id): .remap (SHM_REMAP) needs an address")
    }
    let (id, size) = (self.id, self.size)
    let readOnly = flags.contains(.readOnly)
    func map() throws(IPCError) -> UInt {
      let op = IPCOperation("shmat", .sharedMemory, id: id)
      var refused = false
      do throws(IPCError) {
        return UInt(
          bitPattern: try retryingInterrupts(op) { _ in
            let result = AttachedRanges.map(id: id, address: address, flags: flags, size: size)
            refused = result == -1 && errno == AttachedRanges.refusedRemap
            return result
          })
      } catch {
        if refused, let address { throw AttachedRanges.refusal(at: address, id: id) }
        throw error
      }
    }
    try gate.withAttachment { (state) throws(IPCError) in
      if state.address == 0 {
        // Detached: accesses are refused (closed) until the new mapping is published.
        state = .init(address: try map(), readOnly: readOnly)
        gate.endChange(state)
        return
      }
      guard let address else {
        // A new address: map first (accesses go on with the old mapping meanwhile), swap, then
        // unmap the old one, which no access uses any more.
        let new = try map()
        do throws(IPCError) {
          try gate.beginChange("shmat", id: id)
        } catch {
          _ = AttachedRanges.unmap(new)
          throw error
        }
        let old = state.address
        state = .init(address: new, readOnly: readOnly)
        gate.endChange(state)
        _ = AttachedRanges.unmap(old)
        return
      }
      // A fixed address may overlap the old mapping: unmap it first (accesses wait), then map.
      if remap {
        try AttachedRanges.checkRemap(
          AttachedRanges.range(
            at: UInt(bitPattern: address), size: size, rounding: flags.contains(.roundAddress)),
          except: state.address, id: id)
      }
      try gate.beginChange("shmat", id: id)
      _ = AttachedRanges.unmap(state.address)
      state = .init()
      defer { gate.endChange(state) }
      state = .init(address: try map(), readOnly: readOnly)
    }
  }

  /// Detaches the segment from this process (`shmdt`). Reads, writes and zero-copy access then
  /// throw ``IPCError/Kind/notAttached`` until ``attach(address:flags:)``.
  ///
  /// - Throws: ``IPCError/Kind/notAttached`` when not attached; ``IPCError/Kind/busy`` while a
  ///   zero-copy body runs on this object (on this or another thread): the mapping stays until
  ///   it returns.
  public func detach() throws(IPCError) {
    let id = self.id
    try gate.withAttachment { (state) throws(IPCError) in
      guard state.address != 0 else { throw .notAttached("shmdt", id: id) }
      try gate.beginChange("shmdt", id: id)
      let address = state.address
      state = .init()
      gate.endChange(state)
      _ = try retryingInterrupts(IPCOperation("shmdt", .sharedMemory, id: id)) { _ in
        AttachedRanges.unmap(address)
      }
    }
  }

  /// Where the segment is attached in this process (`shmat`'s result), or `nil` when detached.
  public var address: UnsafeRawPointer? { UnsafeRawPointer(bitPattern: gate.current.address) }

  /// Whether this object is attached now (`shmat` done, no `shmdt` since; a local state, not the
  /// kernel's).
  public var isAttached: Bool { gate.current.address != 0 }

  /// Whether the attachment is read-only (``AttachFlags/readOnly``, or opened with a mode
  /// without `0o200`); `false` when detached.
  public var isReadOnly: Bool {
    let current = gate.current
    return current.address != 0 && current.readOnly
  }

  // MARK: Attributes

  /// When a process last attached the segment (`shm_atime`); `nil` if none ever did.
  public var lastAttachTime: Date? {
    get throws(IPCError) { date(fromKernelTime: try stat().atime) }
  }

  /// When a process last detached the segment (`shm_dtime`); `nil` if none ever did.
  public var lastDetachTime: Date? {
    get throws(IPCError) { date(fromKernelTime: try stat().dtime) }
  }

  /// When the segment was created or its owner or mode last set (`shm_ctime`).
  public var lastChangeTime: Date? {
    get throws(IPCError) { date(fromKernelTime: try stat().ctime) }
  }

  /// The process that created the segment (`shm_cpid`).
  public var creatorPID: pid_t { get throws(IPCError) { try stat().cpid } }

  /// The process that last attached or detached the segment (`shm_lpid`).
  public var lastPID: pid_t { get throws(IPCError) { try stat().lpid } }

  /// How many attachments the segment has, in all processes (`shm_nattch`).
  public var numberAttached: Int { get throws(IPCError) { Int(try stat().nattch) } }

  /// Everything about the segment at one moment, from one `IPC_STAT`.
  ///
  /// Readable until the segment is destroyed: after ``remove()`` that is at its last detach.
  public func status() throws(IPCError) -> Status { Status(try stat(), id: id) }

  private func stat() throws(IPCError) -> csysvipc_shm_status {
    try IPCObjectKind.sharedMemory.sharedMemoryStatus(id: id)
  }

  /// A snapshot of a segment's attributes (`struct shmid_ds` from `shmctl(IPC_STAT)`; see
  /// ``status()``).
  public struct Status: Hashable, Sendable {
    /// The key (`shm_perm.__key`); the kernel sets it to ``IPCKey/private`` on removal.
    public var key: IPCKey
    /// The segment's id (`shmget`'s result).
    public var id: Int32
    /// The size in bytes (`shm_segsz`).
    public var size: Int
    /// The permission bits (`shm_perm.mode & 0o777`).
    public var mode: IPCPermissions
    /// The owner's user id (`shm_perm.uid`).
    public var uid: uid_t
    /// The owner's group id (`shm_perm.gid`).
    public var gid: gid_t
    /// The creator's user id (`shm_perm.cuid`).
    public var cuid: uid_t
    /// The creator's group id (`shm_perm.cgid`).
    public var cgid: gid_t
    /// `shm_cpid`.
    public var creatorPID: pid_t
    /// `shm_lpid`.
    public var lastPID: pid_t
    /// `shm_nattch`.
    public var numberAttached: Int
    /// Whether the segment was removed and waits for its last detach (`SHM_DEST` in
    /// `shm_perm.mode`; Linux only, always `false` elsewhere).
    public var isMarkedForRemoval: Bool
    var rawAttachTime: Int64
    var rawDetachTime: Int64
    var rawChangeTime: Int64
    /// `shm_atime`; `nil` before the first attach.
    public var lastAttachTime: Date? { date(fromKernelTime: rawAttachTime) }
    /// `shm_dtime`; `nil` before the first detach.
    public var lastDetachTime: Date? { date(fromKernelTime: rawDetachTime) }
    /// `shm_ctime`.
    public var lastChangeTime: Date? { date(fromKernelTime: rawChangeTime) }

    init(_ ds: csysvipc_shm_status, id: Int32) {
      key = IPCKey(rawValue: ds.perm.key)
      self.id = id
      size = Int(clamping: ds.size)
      mode = IPCPermissions(rawValue: ds.perm.mode & 0o777)
      uid = ds.perm.uid
      gid = ds.perm.gid
      cuid = ds.perm.cuid
      cgid = ds.perm.cgid
      creatorPID = ds.cpid
      lastPID = ds.lpid
      numberAttached = Int(clamping: ds.nattch)
      isMarkedForRemoval = SysVIPC.isMarkedForRemoval(ds.perm)
      rawAttachTime = ds.atime
      rawDetachTime = ds.dtime
      rawChangeTime = ds.ctime
    }
  }

  // MARK: System values

  /// The system's page size in bytes (`sysconf(_SC_PAGESIZE)`, Python's `PAGE_SIZE`): the
  /// default size of a new segment.
  public static var pageSize: Int { system_pageSize() }

  // MARK: Sizes and errors

  /// The largest size accepted before asking the kernel: sizes and offsets then never overflow.
  static let maximumSize = Int.max / 2

  /// Refuses sizes that cannot be right before any system call.
  private static func checkRequestedSize(_ size: Int, key: IPCKey?, flags: IPCFlags)
    throws(IPCError)
  {
    guard size >= 0 else { throw .invalid("shmget: size \(size) is negative") }
    guard size <= maximumSize else {
      throw .outOfRange("shmget: size \(size) is absurd (more than Int.max / 2)")
    }
    if let limits = systemLimits(), limits.shmmax >= 0, Int64(size) > limits.shmmax {
      throw .outOfRange(
        "shmget: size \(size) is larger than the system's largest segment (SHMMAX \(limits.shmmax))"
      )
    }
    let mustCreate =
      flags.contains(.create) && (flags.contains(.exclusive) || key == nil || key == .private)
    if mustCreate && size == 0 {
      throw .invalid(
        "shmget: size 0 cannot create a segment; give at least 1 byte (nil: one page)")
    }
  }

  /// Rewrites the kernel's bare `EINVAL` from `shmget` into what was wrong with the size.
  private static func explainingSize(_ error: IPCError, key: IPCKey?, size: Int) -> IPCError {
    guard error.kind == .invalidArgument, error.errno == .invalidArgument, let key else {
      return error
    }
    let existing = key == .private ? -1 : system_shmget(key.rawValue, 0, 0)
    if existing >= 0 {
      var status = csysvipc_shm_status()
      let actual = system_shmctl_stat(existing, &status) == 0 ? " (\(status.size) bytes)" : ""
      return IPCError(
        .invalidArgument,
        "shmget on shared memory with key \(key): size \(size) is larger than the existing "
          + "segment\(actual); open it with size 0 or less", errno: error.errno)
    }
    return IPCError(
      .invalidArgument,
      "shmget on shared memory with key \(key): size \(size) is refused for a new segment "
        + "(below the minimum of 1 byte, above SHMMAX, or not allowed for huge pages)",
      errno: error.errno)
  }

  /// The segment's size from `IPC_STAT`.
  private static func segmentSize(id: Int32) throws(IPCError) -> Int {
    try checkedSize(try IPCObjectKind.sharedMemory.sharedMemoryStatus(id: id).size, id: id)
  }

  private static func checkedSize(_ size: UInt64, id: Int32) throws(IPCError) -> Int {
    guard size <= UInt64(maximumSize) else {
      throw .outOfRange("shared memory \(id): size \(size) is too large for this process")
    }
    return Int(size)
  }
}

/// Whether a segment was removed and waits for its last detach (`SHM_DEST` in its mode; Linux).
func isMarkedForRemoval(_ perm: csysvipc_perm) -> Bool {
  #if os(Linux)
    perm.mode & UInt32(SHM_DEST) != 0
  #else
    false
  #endif
}
