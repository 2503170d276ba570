import CSysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

extension MessageQueue {
  /// A message laid out as the kernel reads and writes it (`struct msgbuf`: a C `long` type,
  /// then the text), owned by the caller: `MessageQueue.send(_:block:type:timeout:)` and
  /// ``MessageQueue/receive(into:block:type:timeout:options:)->()`` move it
  /// with no copy in user space at all, as a C program with its own `struct msgbuf` does.
  ///
  /// ```swift
  /// var buffer = try MessageQueue.MessageBuffer(capacity: 8192)
  /// buffer.withUnsafeMutableText(count: 5) { $0.copyBytes(from: "hello".utf8) }
  /// try queue.send(buffer, type: 2)
  /// try queue.receive(into: &buffer)
  /// buffer.withUnsafeText { text in print(buffer.type, Array(text)) }
  /// ```
  ///
  /// Reusing one buffer makes sending and receiving allocation-free. It is not copyable: it owns
  /// its memory, which it frees when it goes away.
  public struct MessageBuffer: ~Copyable {
    private let block: UnsafeMutableRawPointer
    /// The most text bytes the buffer holds.
    public let capacity: Int
    /// The length of the text: set by ``withUnsafeMutableText(count:_:)`` or by a receive.
    public private(set) var count: Int = 0
    /// The type of the last message received into the buffer (0 before any).
    public private(set) var type: Int = 0

    /// A buffer for messages of up to `capacity` bytes of text (one heap allocation, here).
    ///
    /// - Throws: ``IPCError/Kind/invalidArgument`` for a negative capacity;
    ///   ``IPCError/Kind/outOfRange`` for one above the system's largest message (`msgmax`:
    ///   no message could use the rest) or one the system cannot allocate (`malloc` fails).
    public init(capacity: Int) throws(IPCError) {
      guard capacity >= 0 else {
        throw .invalid("MessageBuffer: capacity \(capacity) is negative")
      }
      let limit = MessageQueueCall.systemMaxMessageSize ?? (Int.max / 2)
      guard capacity <= limit else {
        throw .outOfRange(
          "MessageBuffer: capacity \(capacity) is above the largest message the system allows "
            + "(msgmax, \(limit) bytes)")
      }
      // malloc, not allocate(byteCount:alignment:), which traps when memory runs out; its
      // blocks are aligned for any C type, a C long included.
      guard let block = system_malloc(MessageQueueCall.headerSize + capacity) else {
        throw .outOfRange("MessageBuffer: capacity \(capacity) cannot be allocated (malloc failed)")
      }
      self.capacity = capacity
      self.block = block
    }

    deinit { system_free(block) }

    /// Sets the text's length to `count` (clamped to 0...``capacity``) and lets `body` write it
    /// in place.
    public mutating func withUnsafeMutableText<R, E: Error>(
      count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
      self.count = Swift.min(Swift.max(count, 0), capacity)
      return try body(
        UnsafeMutableRawBufferPointer(start: block + MessageQueueCall.headerSize, count: self.count)
      )
    }

    /// Lets `body` read the text (``count`` bytes) in place.
    public func withUnsafeText<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R)
      throws(E) -> R
    {
      try body(UnsafeRawBufferPointer(start: block + MessageQueueCall.headerSize, count: count))
    }

    /// The kernel's layout, for this file's send and receive.
    fileprivate var message: UnsafeMutableRawPointer { block }
    fileprivate mutating func received(count: Int, type: Int) {
      self.count = count
      self.type = type
    }
  }

  /// Sends the text of `buffer` (its ``MessageBuffer/count`` bytes) with `type` (`msgsnd` of
  /// the buffer itself: no copy in user space). Parameters and errors as for
  /// `send(_:block:type:timeout:)` of an `UnsafeRawBufferPointer`.
  public func send(
    _ buffer: borrowing MessageBuffer, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) throws(IPCError) {
    let kernelType = try MessageQueueCall.sendType(type)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgsnd")
    try MessageQueueCall.checkLength(buffer.count, maxMessageSize: maxMessageSize, id: id)
    buffer.message.storeBytes(of: kernelType, as: CLong.self)
    try MessageQueueCall.sendOrThrow(
      id: id, buffer.message, textCount: buffer.count, wait: wait)
  }

  /// Receives a message into `buffer` (`msgrcv` into the buffer itself: no copy in user space);
  /// its ``MessageBuffer/count`` and ``MessageBuffer/type`` say what arrived. Parameters and
  /// errors as for `receive(block:type:timeout:options:)`; a message longer than the
  /// buffer's ``MessageBuffer/capacity`` throws ``IPCError/Kind/outOfRange`` and stays queued
  /// (unless `options` has ``ReceiveOptions/truncate``).
  public func receive(
    into buffer: inout MessageBuffer, block: Bool = true, type: Int = 0,
    timeout: Duration? = nil, options: ReceiveOptions = []
  ) throws(IPCError) {
    let (kernelType, flags) = try MessageQueueCall.receiveArguments(type, options)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgrcv")
    let (message, capacity) = (buffer.message, buffer.capacity)
    let count = try MessageQueueCall.count(
      MessageQueueCall.receive(
        id: id, message, capacity: capacity, type: kernelType, flags: flags, wait: wait),
      id: id, room: "the buffer's capacity (\(capacity) bytes)")
    buffer.received(count: count, type: Int(message.load(as: CLong.self)))
  }
}
