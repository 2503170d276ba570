import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The msgsnd / msgrcv path of ``MessageQueue``: argument checks, the kernel's message layout,
/// one attempt that never waits (for the blocking, timed and async forms alike), and waiting.
///
/// The kernel reads and writes a message as one block: a C `long` type, then the text
/// (`struct msgbuf`). Sending therefore copies the text once, into such a block; receiving
/// lands in one and copies out at most once.
enum MessageQueueCall {
  /// The bytes before the text in the kernel's layout: `sizeof(long)`.
  static let headerSize = MemoryLayout<CLong>.size

  /// The kernel's largest message (`msgmax`, from `IPC_INFO` or sysctl), read once per process;
  /// `nil` where it cannot be read.
  static let systemMaxMessageSize: Int? = {
    guard let limits = systemLimits(), limits.msgmax > 0 else { return nil }
    return Int(limits.msgmax)
  }()

  /// The largest message block ``withScratch(byteCount:_:)`` serves without allocating: the kernel's
  /// layout of a message of Linux's default `msgmax` (8192 bytes), plus a header's worth for
  /// the fallback of ``attemptReceive(id:into:type:flags:mayWait:)``.
  static let stackScratchBytes = systemScratchBytes

  // MARK: Arguments

  /// A message type for msgsnd: > 0, and a C `long`.
  @inline(__always)
  static func sendType(_ type: Int) throws(IPCError) -> CLong {
    guard type > 0, let value = CLong(exactly: type) else {
      throw .invalid("msgsnd: message type \(type) must be > 0 (and fit a C long)")
    }
    return value
  }

  /// A message type for msgrcv (any C `long`) and the flags for `options`.
  @inline(__always)
  static func receiveArguments(
    _ type: Int, _ options: MessageQueue.ReceiveOptions
  ) throws(IPCError) -> (type: CLong, flags: Int32) {
    guard let value = CLong(exactly: type) else {
      throw .invalid("msgrcv: message type \(type) does not fit a C long")
    }
    var flags: Int32 = 0
    if options.contains(.truncate) { flags |= MSG_NOERROR }
    if options.contains(.exceptType) {
      guard systemMessageExcept != 0 else {
        throw .invalid("msgrcv: .exceptType (MSG_EXCEPT) is not supported on this platform")
      }
      // The kernel ignores MSG_EXCEPT for type 0 and negative types: refuse instead.
      guard type > 0 else {
        throw .invalid("msgrcv: .exceptType needs a type > 0, not \(type)")
      }
      flags |= systemMessageExcept
    }
    return (value, flags)
  }

  /// Checks an outgoing message's length against the client-side bound and `msgmax`.
  ///
  /// - Parameter atLeast: `count` is where reading the message stopped, not its length.
  @inline(__always)
  static func checkLength(
    _ count: Int, maxMessageSize: Int, id: Int32, atLeast: Bool = false
  ) throws(IPCError) {
    if count > maxMessageSize {
      throw .outOfRange(
        "msgsnd on message queue \(id): a message of \(atLeast ? "more than " : "")"
          + "\(atLeast ? count - 1 : count) bytes exceeds maxMessageSize (\(maxMessageSize) bytes)")
    }
    if let limit = systemMaxMessageSize, count > limit {
      throw .outOfRange(
        "msgsnd on message queue \(id): a message of \(atLeast ? "more than " : "")"
          + "\(atLeast ? count - 1 : count) bytes exceeds the system's largest message "
          + "(msgmax, \(limit) bytes)")
    }
  }

  // MARK: Waiting

  /// How long a send or receive may wait, from `block` and `timeout`.
  enum Wait {
    /// Not at all: `block: false` or a zero timeout (`IPC_NOWAIT`).
    case never
    /// As long as it takes, in the kernel.
    case forever
    /// Until a deadline, by polling (the kernel has no timed msgsnd / msgrcv).
    case until(Deadline, nanoseconds: Int64)

    init(block: Bool, timeout: Duration?, _ call: StaticString) throws(IPCError) {
      let nanoseconds = try timeoutNanoseconds(timeout, call)
      guard block, nanoseconds != 0 else {
        self = .never
        return
      }
      guard let nanoseconds else {
        self = .forever
        return
      }
      self = .until(Deadline(afterNanoseconds: nanoseconds), nanoseconds: nanoseconds)
    }
  }

  /// The first poll interval; it doubles up to ``pollCap``.
  static let pollStart: Int64 = 50_000
  /// The longest poll interval (2 ms): the granularity of a timed send or receive.
  static let pollCap: Int64 = 2_000_000

  /// Waits as `wait` says for `attempt` to succeed: `attempt(true)` may wait in the kernel,
  /// `attempt(false)` must not; `nil` means "not now".
  ///
  /// - Parameters:
  ///   - triedOnce: the caller already made one attempt that did not wait, and it failed.
  ///   - wouldBlock: the errno of "not now", for the ``IPCError/Kind/busy`` error.
  static func waiting<R>(
    _ wait: Wait, _ op: IPCOperation, wouldBlock: Errno, triedOnce: Bool = false,
    _ attempt: (_ mayWait: Bool) throws(IPCError) -> R?
  ) throws(IPCError) -> R {
    switch wait {
    case .forever:
      if let result = try attempt(true) { return result }
      throw IPCError(.internal, "\(op.subject): returned without waiting")
    case .never:
      if !triedOnce, let result = try attempt(false) { return result }
      throw IPCError.system(wouldBlock, op)
    case .until(let deadline, let nanoseconds):
      if !triedOnce, let result = try attempt(false) { return result }
      var step = pollStart
      while true {
        let remaining = deadline.remainingNanoseconds
        if remaining == 0 { break }
        sleepNanoseconds(min(step, remaining))
        step = min(step * 2, pollCap)
        if let result = try attempt(false) { return result }
      }
      let seconds = Double(nanoseconds) / 1e9
      throw IPCError(.busy, "\(op.subject): timed out after \(seconds) s", errno: wouldBlock)
    }
  }

  // MARK: Sending

  /// One msgsnd of a message laid out for the kernel (`message`: the type, then `textCount`
  /// bytes of text). Returns `false` when the queue had no room and `mayWait` is `false`.
  @inline(__always)
  static func attemptSend(
    id: Int32, _ message: UnsafeRawPointer, textCount: Int, mayWait: Bool
  ) throws(IPCError) -> Bool {
    let flags: Int32 = mayWait ? 0 : IPC_NOWAIT
    var full = false
    _ = try retryingInterrupts(IPCOperation("msgsnd", .messageQueue, id: id)) { _ -> Int32 in
      let rc = system_msgsnd(id, message, textCount, flags)
      if rc == -1 && !mayWait && currentErrno == .resourceTemporarilyUnavailable {
        full = true
        return 0
      }
      return rc
    }
    return !full
  }

  /// Refuses a message the queue can never hold: the kernel would let its sender wait forever.
  ///
  /// A message fits when the queue's bytes plus its own stay within `msg_qbytes`, and (Linux)
  /// the message count stays within `msg_qbytes` too; so a queue of capacity 0 holds nothing.
  /// Without read permission the capacity cannot be read and the check is skipped.
  static func checkCapacity(id: Int32, textCount: Int) throws(IPCError) {
    let capacity: UInt64
    do {
      capacity = try IPCObjectKind.messageQueue.messageQueueStatus(id: id).qbytes
    } catch let error where error.kind == .permissions {
      return
    }
    if UInt64(textCount) > capacity || capacity == 0 {
      throw .outOfRange(
        "msgsnd on message queue \(id): a message of \(textCount) bytes can never fit the "
          + "queue's capacity (maxSize, msg_qbytes) of \(capacity) bytes")
    }
  }

  /// Sends a message laid out for the kernel, waiting as `wait` says.
  ///
  /// The first attempt never waits; only when the queue is full is its capacity read, so a
  /// message that could never fit fails at once with ``IPCError/Kind/outOfRange`` instead of
  /// waiting forever, and the usual send is one system call.
  static func send(
    id: Int32, _ message: UnsafeRawPointer, textCount: Int, wait: Wait
  ) throws(IPCError) {
    if try attemptSend(id: id, message, textCount: textCount, mayWait: false) { return }
    try checkCapacity(id: id, textCount: textCount)
    try waiting(
      wait, IPCOperation("msgsnd", .messageQueue, id: id),
      wouldBlock: .resourceTemporarilyUnavailable, triedOnce: true
    ) { (mayWait) throws(IPCError) -> Void? in
      try attemptSend(id: id, message, textCount: textCount, mayWait: mayWait) ? () : nil
    }
  }

  /// The common send in one step: `text` laid out in a scratch block and one msgsnd that does
  /// not wait. `false` on any failure (a full queue, an error, EINTR): the general path then
  /// decides, having sent nothing.
  @inline(__always)
  static func sendAtOnce(id: Int32, _ text: UnsafeRawBufferPointer, type: CLong) -> Bool {
    let count = text.count
    let sent = try? withScratch(byteCount: headerSize + count) { (block) throws(IPCError) in
      block.storeBytes(of: type, toByteOffset: 0, as: CLong.self)
      if let source = text.baseAddress, count > 0 {
        (block.baseAddress! + headerSize).copyMemory(from: source, byteCount: count)
      }
      return system_msgsnd(id, block.baseAddress!, count, IPC_NOWAIT) == 0
    }
    return sent == true
  }

  /// Lays `text` out for the kernel in a scratch block and sends it: the one copy.
  static func send(
    id: Int32, _ text: UnsafeRawBufferPointer, type: CLong, wait: Wait
  ) throws(IPCError) {
    let count = text.count
    try withScratch(byteCount: headerSize + count) { (block) throws(IPCError) in
      block.storeBytes(of: type, toByteOffset: 0, as: CLong.self)
      if let source = text.baseAddress, count > 0 {
        (block.baseAddress! + headerSize).copyMemory(from: source, byteCount: count)
      }
      try send(id: id, UnsafeRawPointer(block.baseAddress!), textCount: count, wait: wait)
    }
  }

  // MARK: Receiving

  /// What one msgrcv attempt found.
  enum Received {
    /// A message of this many bytes of text.
    case message(count: Int)
    /// No matching message (only when not waiting).
    case none
    /// The first matching message is longer than the room for it (`E2BIG`): it stays queued.
    case tooLong
  }

  /// One msgrcv into `message` (the kernel layout: type, then up to `capacity` bytes of text).
  ///
  /// "No message" and "too long" are results, not errors, so that trying again costs no
  /// allocation.
  @inline(__always)
  static func attemptReceive(
    id: Int32, _ message: UnsafeMutableRawPointer, capacity: Int, type: CLong, flags: Int32,
    mayWait: Bool
  ) throws(IPCError) -> Received {
    let allFlags = flags | (mayWait ? 0 : IPC_NOWAIT)
    var outcome = Received.none
    _ = try retryingInterrupts(IPCOperation("msgrcv", .messageQueue, id: id)) {
      _ -> CLong in
      let rc = system_msgrcv(id, message, capacity, type, allFlags)
      if rc == -1 {
        // `==`, not `switch`: matching an Error-conforming value may box it (an allocation).
        let error = currentErrno
        if error == .noMessage && !mayWait { return 0 }
        if error == .argListTooLong {
          outcome = .tooLong
          return 0
        }
        return -1
      }
      outcome = .message(count: Int(rc))
      return rc
    }
    return outcome
  }

  /// One msgrcv into a caller's buffer, without allocating: received in place (the type lands
  /// in the buffer's first bytes, the text after them) and the text moved down over the type.
  ///
  /// A message longer than `buffer.count - headerSize` does not fit that way (`E2BIG`, and the
  /// kernel keeps it queued); it is then received into a scratch block of `buffer.count +
  /// headerSize` bytes and copied. Since no message exceeds `msgmax`, that block is larger than
  /// `msgmax + headerSize` only when `buffer.count > msgmax`, when the first way always fits.
  /// MSG_NOERROR applies only to the second way, so a message is never cut to make room for
  /// the type.
  ///
  /// - Returns: the text's length and the type, or `nil` when no message matched and
  ///   `mayWait` is `false`.
  static func attemptReceive(
    id: Int32, into buffer: UnsafeMutableRawBufferPointer, type: CLong, flags: Int32,
    mayWait: Bool
  ) throws(IPCError) -> (count: Int, type: Int)? {
    if buffer.count >= headerSize, let base = buffer.baseAddress {
      let inPlace = try attemptReceive(
        id: id, base, capacity: buffer.count - headerSize, type: type,
        flags: flags & ~MSG_NOERROR, mayWait: mayWait)
      switch inPlace {
      case .none: return nil
      case .message(let count):
        let received = base.loadUnaligned(as: CLong.self)
        if count > 0 { memmove(base, base + headerSize, count) }
        return (count, Int(received))
      case .tooLong: break  // longer than the room after the type, perhaps not than the buffer
      }
    }
    let capacity = buffer.count
    var receivedType = 0
    let received = try withScratch(byteCount: headerSize + capacity) {
      (block) throws(IPCError) -> Received in
      let received = try attemptReceive(
        id: id, block.baseAddress!, capacity: capacity, type: type, flags: flags,
        mayWait: mayWait)
      if case .message(let count) = received {
        if count > 0 {
          buffer.baseAddress!.copyMemory(from: block.baseAddress! + headerSize, byteCount: count)
        }
        receivedType = Int(block.load(as: CLong.self))
      }
      return received
    }
    switch received {
    case .none: return nil
    case .tooLong: throw .tooLong(id: id, what: "the \(capacity)-byte buffer")
    case .message(let count): return (count, receivedType)
    }
  }

  /// Receives into `buffer`, waiting as `wait` says.
  static func receive(
    id: Int32, into buffer: UnsafeMutableRawBufferPointer, type: CLong, flags: Int32, wait: Wait
  ) throws(IPCError) -> (count: Int, type: Int) {
    try waiting(wait, IPCOperation("msgrcv", .messageQueue, id: id), wouldBlock: .noMessage) {
      (mayWait) throws(IPCError) in
      try attemptReceive(id: id, into: buffer, type: type, flags: flags, mayWait: mayWait)
    }
  }

  /// Receives into a new array of at most `capacity` bytes, waiting as `wait` says.
  ///
  /// The message lands in a scratch block (no allocation up to `msgmax`) and is copied once,
  /// into an array of its exact length.
  static func receive(
    id: Int32, capacity: Int, type: CLong, flags: Int32, wait: Wait, maxMessageSize: Int
  ) throws(IPCError) -> (message: [UInt8], type: Int) {
    try withScratch(byteCount: headerSize + capacity) {
      (block) throws(IPCError) -> (message: [UInt8], type: Int) in
      let base = block.baseAddress!
      let count = try receive(
        id: id, into: base, capacity: capacity, type: type, flags: flags, wait: wait,
        room: "maxMessageSize (\(maxMessageSize) bytes)")
      let message = [UInt8](UnsafeRawBufferPointer(start: base + headerSize, count: count))
      return (message, Int(base.load(as: CLong.self)))
    }
  }

  /// Receives into a block in the kernel's layout (`message`: the type, then up to `capacity`
  /// bytes of text), waiting as `wait` says; returns the text's length. A message longer than
  /// `capacity` stays queued and throws, naming `room`.
  static func receive(
    id: Int32, into message: UnsafeMutableRawPointer, capacity: Int, type: CLong, flags: Int32,
    wait: Wait, room: @autoclosure () -> String
  ) throws(IPCError) -> Int {
    try waiting(wait, IPCOperation("msgrcv", .messageQueue, id: id), wouldBlock: .noMessage) {
      (mayWait) throws(IPCError) -> Int? in
      try attemptReceive(
        id: id, message, capacity: capacity, type: type, flags: flags, mayWait: mayWait,
        room: room())
    }
  }

  /// One msgrcv as ``attemptReceive(id:_:capacity:type:flags:mayWait:)``: the text's length,
  /// `nil` for no message, and a message too long for `capacity` thrown (naming `room`).
  static func attemptReceive(
    id: Int32, _ message: UnsafeMutableRawPointer, capacity: Int, type: CLong, flags: Int32,
    mayWait: Bool, room: @autoclosure () -> String
  ) throws(IPCError) -> Int? {
    switch try attemptReceive(
      id: id, message, capacity: capacity, type: type, flags: flags, mayWait: mayWait)
    {
    case .none: return nil
    case .message(let count): return count
    case .tooLong: throw .tooLong(id: id, what: room())
    }
  }

  // MARK: Scratch memory

  /// Runs `body` with a block of `byteCount` uninitialised bytes aligned for a C `long`: on
  /// the stack up to 1 KiB, else this thread's scratch block (`csysvipc_scratch_acquire`:
  /// allocated once per thread, so no allocation per message up to ``stackScratchBytes``; Swift's
  /// temporary allocation would malloc above 1 KiB, and an `InlineArray` would be zeroed).
  @inline(__always)
  static func withScratch<R>(
    byteCount: Int, _ body: (UnsafeMutableRawBufferPointer) throws(IPCError) -> R
  ) throws(IPCError) -> R {
    if byteCount <= 1024 {
      return try withUnsafeTemporaryAllocation(
        byteCount: byteCount, alignment: MemoryLayout<CLong>.alignment, body)
    }
    guard let block = system_scratchAcquire(byteCount) else {
      throw IPCError(.system, "msgsnd/msgrcv: no memory for a \(byteCount)-byte message block")
    }
    defer { system_scratchRelease(block) }
    return try body(UnsafeMutableRawBufferPointer(start: block, count: byteCount))
  }

}
