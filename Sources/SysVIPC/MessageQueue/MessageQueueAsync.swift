import CSysVIPC
import SystemPackage

// The async forms of send and receive: one try that does not wait, on the caller's thread; only
// when it must wait, the same msgsnd / msgrcv blocked in the kernel on a pooled thread
// (waitOffPool), never on Swift's cooperative threads. A cancelled task's wait is ended by the
// wait signal at once, having sent or received nothing, with an error whose
// `IPCError.isCancellation` is true.

/// A message block (type, then text) on the heap, owned by one async call: it must outlive the
/// suspension, and it is touched by one thread at a time.
private struct MessageBlock: @unchecked Sendable {
  let bytes: UnsafeMutableRawBufferPointer
  init(textCapacity: Int) {
    bytes = .allocate(
      byteCount: MessageQueueCall.headerSize + textCapacity,
      alignment: MemoryLayout<CLong>.alignment)
  }
  func deallocate() { bytes.deallocate() }
}

extension MessageQueue {
  /// ``send(_:block:type:timeout:)-95i58`` for async code (`msgsnd`):
  /// when the queue is full, waits without blocking a Swift concurrency thread, and honours task
  /// cancellation (nothing is sent then). The bytes are copied before the first suspension.
  public func send(
    _ buffer: UnsafeRawBufferPointer, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) async throws(IPCError) {
    let kernelType = try MessageQueueCall.sendType(type)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgsnd")
    try MessageQueueCall.checkLength(buffer.count, maxMessageSize: maxMessageSize, id: id)
    let message = MessageBlock(textCapacity: buffer.count)
    defer { message.deallocate() }
    message.bytes.storeBytes(of: kernelType, toByteOffset: 0, as: CLong.self)
    if let source = buffer.baseAddress, buffer.count > 0 {
      (message.bytes.baseAddress! + MessageQueueCall.headerSize).copyMemory(
        from: source, byteCount: buffer.count)
    }
    let (id, count) = (self.id, buffer.count)
    if try MessageQueueCall.send(
      id: id, message.bytes.baseAddress!, textCount: count, wait: .never)
    {
      return
    }
    // Full (and a message the queue can hold: that was checked).
    if case .never = wait {
      throw IPCError.system(
        .resourceTemporarilyUnavailable, IPCOperation("msgsnd", .messageQueue, id: id))
    }
    _ = try await waitOffPool(IPCOperation("msgsnd", .messageQueue, id: id).subject) {
      (ticket) throws(IPCError) in
      try MessageQueueCall.send(
        id: id, message.bytes.baseAddress!, textCount: count, wait: wait, ticket: ticket)
    }
  }

  /// ``send(_:block:type:timeout:)-1th8`` for async code (`msgsnd`), as the
  /// `UnsafeRawBufferPointer` form. At most one byte past the limit (``maxMessageSize`` or
  /// `msgmax`) is read.
  public func send(
    _ message: some Sequence<UInt8>, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) async throws(IPCError) {
    // No message may exceed msgmax: read at most one byte past the limit, however long (or
    // endless) the sequence is.
    let limit = min(maxMessageSize, MessageQueueCall.systemMaxMessageSize ?? maxMessageSize)
    let bytes = Array(message.prefix(limit + 1))
    if bytes.count > limit {
      // Name the real length where it is known, else "more than" the limit.
      let known = message.withContiguousStorageIfAvailable { $0.count }
      try MessageQueueCall.checkLength(
        known ?? bytes.count, maxMessageSize: maxMessageSize, id: id, atLeast: known == nil)
    }
    let copy = MessageBlock(textCapacity: bytes.count)
    defer { copy.deallocate() }
    bytes.withUnsafeBytes { copy.bytes.copyMemory(from: $0) }
    try await send(
      UnsafeRawBufferPointer(rebasing: copy.bytes[..<bytes.count]), block: block, type: type,
      timeout: timeout)
  }

  /// ``send(_:block:type:timeout:)-6ysto`` for async code (`msgsnd`): the string's UTF-8 bytes.
  public func send(
    _ string: String, block: Bool = true, type: Int = 1, timeout: Duration? = nil
  ) async throws(IPCError) {
    try await send(string.utf8, block: block, type: type, timeout: timeout)
  }

  /// ``receive(block:type:timeout:options:)-5tdpe`` for async code (`msgrcv`): waits for a
  /// message without blocking a Swift concurrency thread, and honours task cancellation (nothing is taken off
  /// the queue then).
  public func receive(
    block: Bool = true, type: Int = 0, timeout: Duration? = nil, options: ReceiveOptions = []
  ) async throws(IPCError) -> (message: [UInt8], type: Int) {
    let (kernelType, flags) = try MessageQueueCall.receiveArguments(type, options)
    let wait = try MessageQueueCall.Wait(block: block, timeout: timeout, "msgrcv")
    let capacity = min(maxMessageSize, MessageQueueCall.systemMaxMessageSize ?? maxMessageSize)
    let block = MessageBlock(textCapacity: capacity)
    defer { block.deallocate() }
    let (id, maxMessageSize) = (self.id, self.maxMessageSize)
    var received = try MessageQueueCall.receive(
      id: id, block.bytes.baseAddress!, capacity: capacity, type: kernelType, flags: flags,
      wait: .never)
    if case .none = received, case .never = wait {
    } else if case .none = received {
      received = try await waitOffPool(IPCOperation("msgrcv", .messageQueue, id: id).subject) {
        (ticket) throws(IPCError) in
        try MessageQueueCall.receive(
          id: id, block.bytes.baseAddress!, capacity: capacity, type: kernelType, flags: flags,
          wait: wait, ticket: ticket)
      }
    }
    let count = try MessageQueueCall.count(
      received, id: id, room: "maxMessageSize (\(maxMessageSize) bytes)")
    let base = block.bytes.baseAddress!
    let message = [UInt8](
      UnsafeRawBufferPointer(start: base + MessageQueueCall.headerSize, count: count))
    return (message, Int(base.load(as: CLong.self)))
  }

  /// The messages of `type` as they arrive, as an `AsyncSequence`: each step is an async
  /// ``receive(block:type:timeout:options:)-9bume`` (`msgrcv`, off the cooperative pool).
  ///
  /// ```swift
  /// for try await (message, type) in queue.messages() {
  ///   handle(message, type)
  /// }
  /// ```
  ///
  /// The sequence ends when the queue is removed or the task is cancelled; other failures
  /// (permissions, a message longer than ``maxMessageSize``) are thrown.
  public func messages(type: Int = 0, options: ReceiveOptions = []) -> Messages {
    Messages(queue: self, type: type, options: options)
  }

  /// The `AsyncSequence` of ``messages(type:options:)``: one `msgrcv` per element.
  public struct Messages: AsyncSequence, Sendable {
    /// A received message: its bytes and its type.
    public typealias Element = (message: [UInt8], type: Int)
    /// What a step can throw.
    public typealias Failure = IPCError

    let queue: MessageQueue
    let type: Int
    let options: ReceiveOptions

    /// An iterator that receives one message (`msgrcv`) per step.
    public func makeAsyncIterator() -> Iterator {
      Iterator(queue: queue, type: type, options: options)
    }

    /// Receives one message (`msgrcv`) per `next()`.
    public struct Iterator: AsyncIteratorProtocol {
      /// A received message: its bytes and its type.
      public typealias Element = (message: [UInt8], type: Int)
      /// What a step can throw.
      public typealias Failure = IPCError

      let queue: MessageQueue
      let type: Int
      let options: ReceiveOptions
      var finished = false

      /// The next message (`msgrcv`), or `nil` once the queue is removed (`EIDRM`) or the task
      /// cancelled.
      public mutating func next() async throws(IPCError) -> Element? {
        guard !finished, !Task.isCancelled else { return nil }
        do {
          return try await queue.receive(type: type, options: options)
        } catch  where error.kind == .existential || error.isCancellation {
          finished = true
          return nil
        }
      }
    }
  }
}
