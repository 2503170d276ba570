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

/// A System V message queue: typed messages passed between processes through the kernel
/// (`msgget`, `msgsnd`, `msgrcv`, `msgctl`).
///
/// ```swift
/// let queue = try MessageQueue(key: nil, flags: .createExclusive)
/// defer { try? queue.remove() }
/// try queue.send("hello", type: 2)
/// let (message, type) = try queue.receive()   // ([104, 101, 108, 108, 111], 2)
/// ```
///
/// Every message has a type, an `Int` > 0 (the kernel's C `long`); receivers pick messages by
/// type (see ``receive(block:type:timeout:options:)-5tdpe``).
///
/// `MessageQueue` is a small value (key, id and the client-side ``maxMessageSize``) and
/// `Sendable`: copies name the same kernel object. The queue outlives the process until someone
/// calls ``remove()``.
///
/// ## Limits
/// The kernel bounds each message (`msgmax`, 8192 bytes by default on Linux) and each queue's
/// total bytes (``maxSize``, `msg_qbytes`, by default `msgmnb`: 16384 on Linux). A message over
/// ``maxMessageSize`` or `msgmax` is refused at once with ``IPCError/Kind/outOfRange``, as is
/// one larger than the queue's whole capacity, which C would let wait forever. A full queue
/// makes ``send(_:block:type:timeout:)-95i58`` wait (or throw
/// ``IPCError/Kind/busy``) until a receiver makes room.
///
/// ## Timeouts
/// The kernel has no timed msgsnd or msgrcv. With a `timeout`, sending and receiving try once
/// without waiting (`IPC_NOWAIT`), then wait in the kernel as an untimed call does, and at the
/// deadline (on the monotonic clock) a signal ends the wait (``IPCSystem/waitSignal``; see
/// <doc:Concurrency>). A message that arrives, or room that appears, is taken as soon as the
/// scheduler runs the caller; the call gives up at the deadline with ``IPCError/Kind/busy``;
/// the wait costs no CPU.
///
/// ## Copies and allocation
/// The kernel wants the type and the text in one block. Sending copies the text once, into
/// such a block (on the stack up to 1 KiB, else a block each thread allocates once): no heap
/// allocation per message up to 8192 bytes (Linux's default `msgmax`). ``receive(into:block:type:timeout:options:)->(_,_)`` allocates nothing;
/// ``receive(block:type:timeout:options:)-5tdpe`` allocates only the array it returns.
public struct MessageQueue: IPCObject, Hashable {
  /// ``IPCObjectKind/messageQueue``: controlled with `msgctl`.
  public static var objectKind: IPCObjectKind { .messageQueue }

  /// The key passed to `msgget` (or the random one drawn for `key: nil`; `msg_perm.__key` when
  /// opened by id).
  ///
  /// A queue opened by id without read permission (``init(id:maxMessageSize:)`` on a queue this
  /// process may only write to) does not know its key: it is read (`IPC_STAT`) when asked for,
  /// and is ``IPCKey/private`` while it cannot be read.
  public var key: IPCKey {
    if let knownKey { return knownKey }
    let status = try? IPCObjectKind.messageQueue.messageQueueStatus(id: id)
    return status.map { IPCKey(rawValue: $0.perm.key) } ?? .private
  }
  /// The key when known: always, except when opened by id without read permission.
  private let knownKey: IPCKey?
  /// The kernel's id for the queue (`msgget`'s result).
  public let id: Int32
  /// The longest message this value sends or receives with
  /// ``receive(block:type:timeout:options:)-5tdpe``, in bytes (Python's `max_message_size`;
  /// default 2048). A local bound, not a property of the kernel object: a longer message from
  /// another process stays queued, and ``receive(block:type:timeout:options:)-5tdpe`` throws
  /// ``IPCError/Kind/outOfRange`` for it (or cuts it with ``ReceiveOptions/truncate``).
  public let maxMessageSize: Int

  /// Opens or creates a message queue by key (`msgget`).
  ///
  /// - Parameters:
  ///   - key: the key; `nil` draws an unused random key and needs ``IPCFlags/createExclusive``.
  ///   - flags: `[]` opens an existing queue, ``IPCFlags/create`` opens or creates,
  ///     ``IPCFlags/createExclusive`` creates or fails with ``IPCError/Kind/existential``.
  ///   - mode: permission bits for a new queue; for an existing one, the access asked for.
  ///   - maxMessageSize: see ``maxMessageSize``; at least 1. It may exceed the system's
  ///     `msgmax` (messages cannot), but then buys nothing.
  /// - Throws: ``IPCError/Kind/existential`` (no such queue / already exists),
  ///   ``IPCError/Kind/permissions``, ``IPCError/Kind/invalidArgument`` for refused flags,
  ///   modes, keys or a `maxMessageSize` below 1 (checked before any queue is created).
  public init(
    key: IPCKey?, flags: IPCFlags = [], mode: IPCPermissions = 0o600, maxMessageSize: Int = 2048
  ) throws(IPCError) {
    try Self.checkMaxMessageSize(maxMessageSize)
    let opened = try IPCObjectKind.messageQueue.open(key: key, flags: flags, mode: mode) {
      system_msgget($0, $1)
    }
    self.knownKey = opened.key
    self.id = opened.id
    self.maxMessageSize = maxMessageSize
  }

  /// Opens an existing message queue by id (Python cannot). The ``key`` is read from the kernel
  /// (`IPC_STAT`) when this process may read the queue.
  ///
  /// Opening needs no access at all: a queue this process may only write to (mode `0o622` of
  /// another user, say) opens, and ``send(_:block:type:timeout:)-95i58`` works, as C's `msgsnd`
  /// does on the bare id; each operation then meets the kernel's permission check itself
  /// (receiving needs read access, ``status()`` too).
  ///
  /// - Throws: ``IPCError/Kind/existential`` when no queue has this id,
  ///   ``IPCError/Kind/invalidArgument`` for a `maxMessageSize` below 1.
  public init(id: Int32, maxMessageSize: Int = 2048) throws(IPCError) {
    try Self.checkMaxMessageSize(maxMessageSize)
    do {
      let status = try IPCObjectKind.messageQueue.messageQueueStatus(id: id)
      self.knownKey = IPCKey(rawValue: status.perm.key)
    } catch let error where error.errno == .permissionDenied {
      // EACCES: the queue exists, and this process may not read it; sending may still work.
      self.knownKey = nil
    }
    self.id = id
    self.maxMessageSize = maxMessageSize
  }

  /// Two values are equal when they name the same queue with the same ``maxMessageSize``
  /// (whether or not each has read its ``key`` yet).
  public static func == (lhs: MessageQueue, rhs: MessageQueue) -> Bool {
    lhs.id == rhs.id && lhs.maxMessageSize == rhs.maxMessageSize
  }

  /// Hashes the ``id`` and ``maxMessageSize``, as ``==(_:_:)`` compares them.
  public func hash(into hasher: inout Hasher) {
    hasher.combine(id)
    hasher.combine(maxMessageSize)
  }

  private static func checkMaxMessageSize(_ size: Int) throws(IPCError) {
    // The upper bound keeps `size` plus the kernel's header from overflowing.
    guard size >= 1, size <= Int.max / 2 else {
      throw .invalid("msgget: maxMessageSize \(size) is outside 1...\(Int.max / 2)")
    }
  }

  // MARK: Sending

  /// Puts a message on the queue (`msgsnd`), copying the bytes once, straight from `buffer`
  /// into the kernel's message layout (type, then text) in a scratch block that costs no
  /// allocation per message.
  ///
  /// The message may contain any bytes, NUL included, and may be empty.
  ///
  /// - Parameters:
  ///   - buffer: the message; at most ``maxMessageSize`` bytes and at most the system's
  ///     `msgmax`.
  ///   - block: whether to wait while the queue is full (default `true`); `false` throws
  ///     ``IPCError/Kind/busy`` instead (`IPC_NOWAIT`).
  ///   - type: the message's type, > 0 (a C `long`).
  ///   - timeout: with `block`, the longest wait: `nil` waits as long as it takes, `.zero`
  ///     never waits, a positive duration waits at most that long (see "Timeouts" above).
  /// - Throws: ``IPCError/Kind/invalidArgument`` for a type ≤ 0 or a negative timeout;
  ///   ``IPCError/Kind/outOfRange`` for a message over ``maxMessageSize``, over `msgmax`, or
  ///   over the queue's whole capacity (``maxSize``), at once and with nothing sent;
  ///   ``IPCError/Kind/busy`` when the queue stayed full; ``IPCError/Kind/existential`` when
  ///   the queue is removed, also while waiting; ``IPCError/Kind/permissions`` without write
  ///   access.
  public func send(
    _ buffer: UnsafeRawBufferPointer, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) throws(IPCError) {
    let kernelType = try MessageQueueCall.sendType(type)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgsnd")
    try MessageQueueCall.checkLength(buffer.count, maxMessageSize: maxMessageSize, id: id)
    try MessageQueueCall.send(id: id, buffer, type: kernelType, wait: wait)
  }

  /// Puts a message of bytes on the queue (`msgsnd`). Arrays, `Data` and other contiguous
  /// collections are copied once, without allocating, as by
  /// ``send(_:block:type:timeout:)-95i58``. Other sequences are
  /// gathered into that same block, reading at most one byte past the limits (so even an
  /// endless sequence fails with ``IPCError/Kind/outOfRange``); that runs through generic
  /// code this module cannot specialize for the caller's type, which for some collections
  /// (`repeatElement`, for one) allocates per element: prefer contiguous storage.
  ///
  /// Parameters and errors as for the `UnsafeRawBufferPointer` form.
  public func send(
    _ message: some Sequence<UInt8>, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) throws(IPCError) {
    var outcome: Result<Void, IPCError>?
    _ = message.withContiguousStorageIfAvailable { bytes in
      outcome = Result { () throws(IPCError) in
        try send(UnsafeRawBufferPointer(bytes), block: block, type: type, timeout: timeout)
      }
    }
    if let outcome { return try outcome.get() }
    try sendGathering(message, block: block, type: type, timeout: timeout)
  }

  /// Puts a string on the queue as its UTF-8 bytes, without a terminating NUL (`msgsnd`).
  /// Parameters and errors as for the `UnsafeRawBufferPointer` form; ``maxMessageSize``
  /// counts UTF-8 bytes.
  public func send(
    _ string: String, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) throws(IPCError) {
    var string = string
    var outcome: Result<Void, IPCError> = .success(())
    string.withUTF8 { bytes in
      outcome = Result { () throws(IPCError) in
        try send(UnsafeRawBufferPointer(bytes), block: block, type: type, timeout: timeout)
      }
    }
    try outcome.get()
  }

  /// A sequence without contiguous storage: its bytes go straight into the kernel's layout.
  private func sendGathering(
    _ message: some Sequence<UInt8>, block: Bool, type: Int, timeout: Duration?
  ) throws(IPCError) {
    let kernelType = try MessageQueueCall.sendType(type)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgsnd")
    let limit = min(maxMessageSize, MessageQueueCall.systemMaxMessageSize ?? maxMessageSize)
    let header = MessageQueueCall.headerSize
    guard header + limit <= MessageQueueCall.stackScratchBytes else {
      // A bound beyond the stack block: collect at most one byte past it, then send that.
      let bytes = [UInt8](message.prefix(limit + 1))
      try MessageQueueCall.checkLength(
        bytes.count, maxMessageSize: maxMessageSize, id: id, atLeast: bytes.count > limit)
      return try send(bytes, block: block, type: type, timeout: timeout)
    }
    try MessageQueueCall.withScratch(byteCount: header + limit + 1) { (block) throws(IPCError) in
      // One pass over the sequence, stopping one byte past the limit.
      let text = UnsafeMutableRawBufferPointer(rebasing: block[header...])
      let count = text.withMemoryRebound(to: UInt8.self) { $0.initialize(from: message).index }
      try MessageQueueCall.checkLength(
        count, maxMessageSize: maxMessageSize, id: id, atLeast: count > limit)
      block.storeBytes(of: kernelType, toByteOffset: 0, as: CLong.self)
      try MessageQueueCall.sendOrThrow(
        id: id, UnsafeRawPointer(block.baseAddress!), textCount: count, wait: wait)
    }
  }

  // MARK: Receiving

  /// The `msgrcv` flags that ``receive(block:type:timeout:options:)-5tdpe`` and
  /// ``receive(into:block:type:timeout:options:)->(_,_)`` may do beyond the reference.
  public struct ReceiveOptions: OptionSet, Hashable, Sendable {
    /// The option bits (this package's own, mapped to the `msgrcv` flags on each call).
    public let rawValue: UInt32
    /// Options from their bits (this package's, not `msgrcv`'s).
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `MSG_NOERROR`: a message longer than the buffer is cut to fit (the rest is lost)
    /// instead of failing with ``IPCError/Kind/outOfRange``.
    public static let truncate = ReceiveOptions(rawValue: 1 << 0)
    /// `MSG_EXCEPT` (Linux only): receive the first message whose type is *not* `type`
    /// (which must then be > 0). Elsewhere it is refused with
    /// ``IPCError/Kind/invalidArgument``.
    public static let exceptType = ReceiveOptions(rawValue: 1 << 1)
  }

  /// Takes a message off the queue (`msgrcv`), returning its bytes and its type.
  ///
  /// - Parameters:
  ///   - block: whether to wait until a matching message arrives (default `true`); `false`
  ///     throws ``IPCError/Kind/busy`` instead (`IPC_NOWAIT`).
  ///   - type: which message: `0` the first on the queue; `> 0` the first of that type
  ///     (with ``ReceiveOptions/exceptType``, the first of any other type); `< 0` the first of
  ///     the lowest type ≤ `|type|`.
  ///   - timeout: with `block`, the longest wait: `nil` waits as long as it takes, `.zero`
  ///     never waits, a positive duration waits at most that long (see "Timeouts" above).
  ///   - options: ``ReceiveOptions/truncate``, ``ReceiveOptions/exceptType``.
  /// - Returns: the message (at most ``maxMessageSize`` bytes) and its type.
  /// - Throws: ``IPCError/Kind/busy`` when no matching message came in time;
  ///   ``IPCError/Kind/outOfRange`` (`E2BIG`) for a message longer than ``maxMessageSize``,
  ///   which stays queued; ``IPCError/Kind/existential`` when the queue is removed, also
  ///   while waiting; ``IPCError/Kind/permissions`` without read access;
  ///   ``IPCError/Kind/invalidArgument`` for a negative timeout or a misused option.
  public func receive(
    block: Bool = true, type: Int = 0, timeout: Duration? = nil, options: ReceiveOptions = []
  ) throws(IPCError) -> (message: [UInt8], type: Int) {
    let (kernelType, flags) = try MessageQueueCall.receiveArguments(type, options)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgrcv")
    // No message exceeds msgmax: a larger buffer would be wasted.
    let capacity = min(maxMessageSize, MessageQueueCall.systemMaxMessageSize ?? maxMessageSize)
    return try MessageQueueCall.receive(
      id: id, capacity: capacity, type: kernelType, flags: flags, wait: wait,
      maxMessageSize: maxMessageSize)
  }

  /// Takes a message off the queue into `buffer` (`msgrcv`), allocating nothing.
  ///
  /// The kernel writes the type into the buffer's first 8 bytes (`sizeof(long)`) and the text
  /// after it; the text is then moved to the start. A message longer than `buffer.count - 8`
  /// but not than `buffer.count` is received into a scratch block and copied instead.
  /// That block is at most `buffer.count + 8` bytes, and needed only for a message within
  /// 8 bytes of `buffer.count`, so no `msgrcv` here touches the heap while messages stay
  /// within Linux's default `msgmax` (8192 bytes).
  ///
  /// - Parameters:
  ///   - buffer: where the text goes; bytes past the returned count are unspecified.
  ///   - block: whether to wait for a matching message, as for
  ///     ``receive(block:type:timeout:options:)-5tdpe``.
  ///   - type: which message: `0` the first, `> 0` the first of that type, `< 0` the first of the
  ///     lowest type ≤ `|type|`.
  ///   - timeout: with `block`, the longest wait; `nil` waits as long as it takes.
  ///   - options: ``ReceiveOptions/truncate`` (`MSG_NOERROR`), ``ReceiveOptions/exceptType``
  ///     (`MSG_EXCEPT`).
  /// - Returns: the text's length and the message's type.
  /// - Throws: as ``receive(block:type:timeout:options:)-5tdpe``; ``IPCError/Kind/outOfRange``
  ///   (`E2BIG`) when the message is longer than `buffer`: it stays queued.
  public func receive(
    into buffer: UnsafeMutableRawBufferPointer, block: Bool = true, type: Int = 0,
    timeout: Duration? = nil, options: ReceiveOptions = []
  ) throws(IPCError) -> (count: Int, type: Int) {
    let (kernelType, flags) = try MessageQueueCall.receiveArguments(type, options)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgrcv")
    guard
      let received = try MessageQueueCall.receive(
        id: id, into: buffer, type: kernelType, flags: flags, wait: wait)
    else { throw IPCError.system(.noMessage, IPCOperation("msgrcv", .messageQueue, id: id)) }
    return received
  }

  // MARK: Attributes

  /// The queue's capacity in bytes: the most its messages may hold together (`msg_qbytes`;
  /// Python's `max_size`). New queues get the system's `msgmnb`.
  public var maxSize: Int { get throws(IPCError) { try status().maxSize } }

  /// Sets the queue's capacity (`msgctl(IPC_SET)` of `msg_qbytes`).
  ///
  /// Lowering it needs ownership (or privilege); raising it above the system's `msgmnb` needs
  /// `CAP_SYS_RESOURCE`. Messages already queued stay.
  ///
  /// - Throws: ``IPCError/Kind/permissions`` without ownership, or when raising above
  ///   `msgmnb` without the capability; ``IPCError/Kind/invalidArgument`` for a negative size
  ///   or one above `UInt32.max` (the kernel would truncate it).
  public func setMaxSize(_ bytes: Int) throws(IPCError) {
    guard bytes >= 0 else { throw .invalid("msgctl(IPC_SET): maxSize \(bytes) is negative") }
    // The kernel keeps msg_qbytes in 32 bits and would silently truncate a larger value
    // (1 << 40 became 0).
    guard bytes <= Int(UInt32.max) else {
      throw .invalid(
        "msgctl(IPC_SET): maxSize \(bytes) exceeds the kernel's largest, \(UInt32.max)")
    }
    let op = IPCOperation("msgctl(IPC_SET)", .messageQueue, id: id)
    _ = try retryingInterrupts(op) { _ -> Int32 in
      var current = csysvipc_msg_status()
      if system_msgctl_stat(id, &current) != 0 { return -1 }
      return system_msgctl_set(
        id, current.perm.uid, current.perm.gid, current.perm.mode & 0o777, UInt64(bytes))
    }
  }

  /// When a message was last sent (`msg_stime`); `nil` before the first.
  public var lastSendTime: Date? { get throws(IPCError) { try status().lastSendTime } }
  /// When a message was last received (`msg_rtime`); `nil` before the first.
  public var lastReceiveTime: Date? { get throws(IPCError) { try status().lastReceiveTime } }
  /// When the queue was created or its owner, mode or size last set (`msg_ctime`).
  public var lastChangeTime: Date? { get throws(IPCError) { try status().lastChangeTime } }
  /// The process that last sent (`msg_lspid`); 0 before the first send.
  public var lastSendPID: pid_t { get throws(IPCError) { try status().lastSendPID } }
  /// The process that last received (`msg_lrpid`); 0 before the first receive.
  public var lastReceivePID: pid_t { get throws(IPCError) { try status().lastReceivePID } }
  /// How many messages are queued (`msg_qnum`).
  public var currentMessages: Int { get throws(IPCError) { try status().currentMessages } }
  /// How many bytes of text are queued (`msg_cbytes`).
  public var currentBytes: Int { get throws(IPCError) { try status().currentBytes } }

  /// Everything about the queue at one moment, from one `msgctl(IPC_STAT)`.
  public func status() throws(IPCError) -> Status {
    let ds = try IPCObjectKind.messageQueue.messageQueueStatus(id: id)
    return Status(
      key: IPCKey(rawValue: ds.perm.key), id: id,
      mode: IPCPermissions(rawValue: ds.perm.mode & 0o777),
      uid: ds.perm.uid, gid: ds.perm.gid, cuid: ds.perm.cuid, cgid: ds.perm.cgid,
      maxSize: Int(clamping: ds.qbytes), currentMessages: Int(clamping: ds.qnum),
      currentBytes: Int(clamping: ds.cbytes), lastSendPID: ds.lspid, lastReceivePID: ds.lrpid,
      rawSendTime: ds.stime, rawReceiveTime: ds.rtime, rawChangeTime: ds.ctime)
  }

  /// A snapshot of a queue's attributes (`struct msqid_ds`, from `msgctl(IPC_STAT)`; see
  /// ``status()``).
  public struct Status: Hashable, Sendable {
    /// The key (`msg_perm.__key`).
    public var key: IPCKey
    /// The id (`msgget`'s result).
    public var id: Int32
    /// The permission bits (`msg_perm.mode & 0o777`).
    public var mode: IPCPermissions
    /// The owner's user id (`msg_perm.uid`).
    public var uid: uid_t
    /// The owner's group id (`msg_perm.gid`).
    public var gid: gid_t
    /// The creator's user id (`msg_perm.cuid`).
    public var cuid: uid_t
    /// The creator's group id (`msg_perm.cgid`).
    public var cgid: gid_t
    /// The capacity in bytes (`msg_qbytes`).
    public var maxSize: Int
    /// Messages queued (`msg_qnum`).
    public var currentMessages: Int
    /// Bytes queued (`msg_cbytes`).
    public var currentBytes: Int
    /// The last sender (`msg_lspid`); 0 before the first send.
    public var lastSendPID: pid_t
    /// The last receiver (`msg_lrpid`); 0 before the first receive.
    public var lastReceivePID: pid_t
    var rawSendTime: Int64
    var rawReceiveTime: Int64
    var rawChangeTime: Int64
    /// `msg_stime`; `nil` before the first send.
    public var lastSendTime: Date? { date(fromKernelTime: rawSendTime) }
    /// `msg_rtime`; `nil` before the first receive.
    public var lastReceiveTime: Date? { date(fromKernelTime: rawReceiveTime) }
    /// `msg_ctime`.
    public var lastChangeTime: Date? { date(fromKernelTime: rawChangeTime) }
  }
}
