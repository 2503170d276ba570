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
/// one msgsnd and one msgrcv routine for every form (blocking, timed and async), and waiting.
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
  /// the fallback of ``receive(id:into:type:flags:wait:ticket:)``.
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
    /// Until a deadline: in the kernel, ended by the wait signal then (the kernel has no
    /// timed msgsnd or msgrcv).
    case until(Deadline, nanoseconds: Int64)

    @inline(__always)
    init(block: Bool, timeout: Duration?, _ call: StaticString) throws(IPCError) {
      if timeout == nil {  // the common call, without converting anything
        self = block ? .forever : .never
        return
      }
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

  /// Runs `call` (msgsnd or msgrcv, given its extra flags) as `wait` says: `.never` once with
  /// `IPC_NOWAIT`; `.forever` blocking in the kernel; `.until` once without waiting, then
  /// blocking until the deadline. `ticket` (an async wait's) ends a blocking call early.
  ///
  /// `call` returns -1 with errno on failure; it turns "not now" (with `IPC_NOWAIT`) into a
  /// result of its own, so that only real failures, a timeout or a cancellation throw.
  @inline(__always)
  static func waiting<R: FixedWidthInteger>(
    _ wait: Wait, _ op: IPCOperation, ticket: WaitTicket?, wouldBlock: Errno,
    _ call: (_ flags: Int32) -> R
  ) throws(IPCError) -> R {
    switch wait {
    case .never:
      return try retryingInterrupts(op) { _ in call(IPC_NOWAIT) }
    case .forever:
      guard let ticket else { return try retryingInterrupts(op) { _ in call(0) } }
      return try waitInKernel(op, deadline: nil, ticket: ticket, wouldBlock: wouldBlock) { _ in
        call(0)
      }
    case .until(let deadline, let nanoseconds):
      do {
        return try waitInKernel(op, deadline: deadline, ticket: ticket, wouldBlock: wouldBlock) {
          _ in call(0)
        }
      } catch  where error.errno == wouldBlock && !error.isCancellation {
        throw .timedOut(op, nanoseconds: nanoseconds, errno: wouldBlock)
      }
    }
  }

  // MARK: Sending

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

  /// Sends a message laid out for the kernel (`message`: the type, then `textCount` bytes of
  /// text), waiting as `wait` says: the one msgsnd of every send.
  ///
  /// The first attempt never waits, and is the whole of the usual send. Only when the queue is
  /// full is its capacity read, so a message that could never fit fails at once with
  /// ``IPCError/Kind/outOfRange`` instead of waiting forever.
  ///
  /// - Returns: `false` when the queue was full and `wait` is `.never`: nothing was sent (the
  ///   async forms then wait off the cooperative pool); callers that do not wait throw then.
  @inline(__always)
  @discardableResult
  static func send(
    id: Int32, _ message: UnsafeRawPointer, textCount: Int, wait: Wait, ticket: WaitTicket? = nil
  ) throws(IPCError) -> Bool {
    let op = IPCOperation("msgsnd", .messageQueue, id: id)
    // "Full" comes back as a result (-2), not through a captured variable: a nested function
    // that captures a variable costs a heap box per call.
    let full: Int32 = -2
    let first = try waiting(.never, op, ticket: nil, wouldBlock: .resourceTemporarilyUnavailable) {
      sendOnce(id, message, textCount, flags: $0, full: full)
    }
    guard first == full else { return true }
    try checkCapacity(id: id, textCount: textCount)
    if case .never = wait { return false }
    _ = try waiting(wait, op, ticket: ticket, wouldBlock: .resourceTemporarilyUnavailable) {
      sendOnce(id, message, textCount, flags: $0, full: full)
    }
    return true
  }

  /// One msgsnd: its result, or `full` when the queue had no room for an `IPC_NOWAIT` send.
  @inline(__always)
  private static func sendOnce(
    _ id: Int32, _ message: UnsafeRawPointer, _ textCount: Int, flags: Int32, full: Int32
  ) -> Int32 {
    let rc = system_msgsnd(id, message, textCount, flags)
    if rc == -1 && flags != 0 && currentErrno == .resourceTemporarilyUnavailable { return full }
    return rc
  }

  /// Lays `text` out for the kernel in a scratch block and sends it (the one copy), waiting as
  /// `wait` says; a full queue with `.never` throws ``IPCError/Kind/busy``.
  @inline(__always)
  static func send(
    id: Int32, _ text: UnsafeRawBufferPointer, type: CLong, wait: Wait
  ) throws(IPCError) {
    let count = text.count
    try withScratch(byteCount: headerSize + count) { (block) throws(IPCError) in
      block.storeBytes(of: type, toByteOffset: 0, as: CLong.self)
      if let source = text.baseAddress, count > 0 {
        (block.baseAddress! + headerSize).copyMemory(from: source, byteCount: count)
      }
      try sendOrThrow(id: id, UnsafeRawPointer(block.baseAddress!), textCount: count, wait: wait)
    }
  }

  /// ``send(id:_:textCount:wait:ticket:)``, a full queue without waiting thrown as
  /// ``IPCError/Kind/busy``.
  @inline(__always)
  static func sendOrThrow(
    id: Int32, _ message: UnsafeRawPointer, textCount: Int, wait: Wait
  ) throws(IPCError) {
    if try !send(id: id, message, textCount: textCount, wait: wait) {
      throw IPCError.system(
        .resourceTemporarilyUnavailable, IPCOperation("msgsnd", .messageQueue, id: id))
    }
  }

  // MARK: Receiving

  /// What one msgrcv found.
  enum Received {
    /// A message of this many bytes of text.
    case message(count: Int)
    /// No matching message (only when not waiting).
    case none
    /// The first matching message is longer than the room for it (`E2BIG`): it stays queued.
    case tooLong
  }

  /// Receives into `message` (the kernel layout: type, then up to `capacity` bytes of text),
  /// waiting as `wait` says: the one msgrcv of every receive. `ticket` (an async wait's) ends
  /// a blocking wait early.
  ///
  /// "No message" (only with `.never`) and "too long" are results, not errors, so that the
  /// callers' next step costs no allocation.
  @inline(__always)
  static func receive(
    id: Int32, _ message: UnsafeMutableRawPointer, capacity: Int, type: CLong, flags: Int32,
    wait: Wait, ticket: WaitTicket? = nil
  ) throws(IPCError) -> Received {
    let op = IPCOperation("msgrcv", .messageQueue, id: id)
    if case .until = wait, ticket == nil {
      // A message already there is taken without arming the deadline.
      let received = try waiting(.never, op, ticket: nil, wouldBlock: .noMessage) {
        receiveOnce(id, message, capacity, type, flags | $0, nowait: $0 != 0)
      }
      if received != noMessage { return outcome(received) }
    }
    return outcome(
      try waiting(wait, op, ticket: ticket, wouldBlock: .noMessage) {
        receiveOnce(id, message, capacity, type, flags | $0, nowait: $0 != 0)
      })
  }

  // One msgrcv's outcomes beyond a length and -1 (results, not captured variables: a nested
  // function that captures a variable costs a heap box per call).
  private static var tooLongMessage: CLong { -2 }
  private static var noMessage: CLong { -3 }

  /// One msgrcv: the text's length, ``tooLongMessage`` (E2BIG), ``noMessage`` (ENOMSG with
  /// `IPC_NOWAIT`), or -1 with errno.
  @inline(__always)
  private static func receiveOnce(
    _ id: Int32, _ message: UnsafeMutableRawPointer, _ capacity: Int, _ type: CLong,
    _ flags: Int32, nowait: Bool
  ) -> CLong {
    let rc = system_msgrcv(id, message, capacity, type, flags)
    if rc >= 0 { return rc }
    // `==`, not `switch`: matching an Error-conforming value may box it (an allocation).
    let error = currentErrno
    if error == .argListTooLong { return tooLongMessage }
    if error == .noMessage && nowait { return noMessage }
    return -1
  }

  @inline(__always)
  private static func outcome(_ rc: CLong) -> Received {
    if rc >= 0 { return .message(count: Int(rc)) }
    return rc == tooLongMessage ? .tooLong : .none
  }

  /// Receives into a caller's buffer, waiting as `wait` says, without allocating: received in
  /// place (the type lands in the buffer's first bytes, the text after them) and the text moved
  /// down over the type.
  ///
  /// A message longer than `buffer.count - headerSize` does not fit that way (`E2BIG`, and the
  /// kernel keeps it queued); it is then received into a scratch block of `buffer.count +
  /// headerSize` bytes and copied. Since no message exceeds `msgmax`, that block is larger than
  /// `msgmax + headerSize` only when `buffer.count > msgmax`, when the first way always fits.
  /// MSG_NOERROR applies only to the second way, so a message is never cut to make room for
  /// the type.
  ///
  /// - Returns: the text's length and the type, or `nil` when no message matched and `wait` is
  ///   `.never`.
  @inline(__always)
  static func receive(
    id: Int32, into buffer: UnsafeMutableRawBufferPointer, type: CLong, flags: Int32, wait: Wait,
    ticket: WaitTicket? = nil
  ) throws(IPCError) -> (count: Int, type: Int)? {
    if buffer.count >= headerSize, let base = buffer.baseAddress {
      // MSG_NOERROR never applies in place (the usual flags are none: no call for the constant).
      let inPlaceFlags = flags == 0 ? 0 : flags & ~MSG_NOERROR
      let inPlace = try receive(
        id: id, base, capacity: buffer.count - headerSize, type: type, flags: inPlaceFlags,
        wait: wait, ticket: ticket)
      switch inPlace {
      case .none: return nil
      case .message(let count):
        let received = base.loadUnaligned(as: CLong.self)
        if count > 0 { memmove(base, base + headerSize, count) }
        return (count, Int(received))
      case .tooLong: break  // longer than the room after the type, perhaps not than the buffer
      }
    }
    return try receiveThroughScratch(
      id: id, into: buffer, type: type, flags: flags, wait: wait, ticket: ticket)
  }

  /// The second way of ``receive(id:into:type:flags:wait:ticket:)``: into a scratch block of
  /// `buffer.count + headerSize` bytes, then copied.
  @inline(never)
  private static func receiveThroughScratch(
    id: Int32, into buffer: UnsafeMutableRawBufferPointer, type: CLong, flags: Int32, wait: Wait,
    ticket: WaitTicket?
  ) throws(IPCError) -> (count: Int, type: Int)? {
    let capacity = buffer.count
    var receivedType = 0
    let received = try withScratch(byteCount: headerSize + capacity) {
      (block) throws(IPCError) -> Received in
      let received = try receive(
        id: id, block.baseAddress!, capacity: capacity, type: type, flags: flags, wait: wait,
        ticket: ticket)
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

  /// A receive's outcome as the text's length: "too long" thrown naming `room`, "no message"
  /// (only without waiting) thrown as ``IPCError/Kind/busy``.
  static func count(
    _ received: Received, id: Int32, room: @autoclosure () -> String
  ) throws(IPCError) -> Int {
    switch received {
    case .message(let count): return count
    case .tooLong: throw .tooLong(id: id, what: room())
    case .none: throw IPCError.system(.noMessage, IPCOperation("msgrcv", .messageQueue, id: id))
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
      let count = try count(
        receive(id: id, base, capacity: capacity, type: type, flags: flags, wait: wait), id: id,
        room: "maxMessageSize (\(maxMessageSize) bytes)")
      let message = [UInt8](UnsafeRawBufferPointer(start: base + headerSize, count: count))
      return (message, Int(base.load(as: CLong.self)))
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
