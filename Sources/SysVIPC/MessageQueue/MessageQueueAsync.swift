import CSysVIPC
import SystemPackage

// The async forms of send and receive. The kernel has no msgsnd / msgrcv that a thread can be
// woken from, so a wait is one non-blocking attempt here, then, only when it must wait, polling
// with IPC_NOWAIT on a thread of its own (50 µs growing to 2 ms, as the timed forms), never on
// Swift's cooperative threads. A cancelled task returns within about 10 ms, having sent or
// received nothing, with an error whose `IPCError.isCancellation` is true.

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

extension MessageQueueCall {
  /// The polling interval of the `round`-th retry: 50 µs doubling up to ``pollCap``.
  static func pollInterval(round: Int) -> Int64 {
    round >= 6 ? pollCap : min(pollStart << round, pollCap)
  }

  /// Runs `attempt` until it gives a result: at once, then off the pool as `wait` says.
  static func waitingAsync<R: Sendable>(
    _ wait: Wait, _ op: IPCOperation, wouldBlock: Errno,
    _ attempt: @escaping @Sendable () throws(IPCError) -> R?
  ) async throws(IPCError) -> R {
    if let result = try attempt() { return result }
    let deadline: Deadline?
    let timedOut: IPCError
    switch wait {
    case .never: throw IPCError.system(wouldBlock, op)
    case .forever:
      deadline = nil
      timedOut = IPCError(.internal, "\(op.subject): a wait without deadline timed out")
    case .until(let end, let nanoseconds):
      deadline = end
      let seconds = Double(nanoseconds) / 1e9
      timedOut = IPCError(.busy, "\(op.subject): timed out after \(seconds) s", errno: wouldBlock)
    }
    let subject = op.subject
    return try await waitOffPool(subject, deadline: deadline, timedOut: { timedOut }) {
      slice, round in
      sleepNanoseconds(min(pollInterval(round: round), slice))
      do throws(IPCError) {
        if let result = try attempt() { return .done(result) }
        return .again
      } catch {
        return .failed(error)
      }
    }
  }
}

extension MessageQueue {
  /// ``send(_:block:type:timeout:)-95i58`` for async code (`msgsnd`, polled with `IPC_NOWAIT`):
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
    if try MessageQueueCall.attemptSend(
      id: id, message.bytes.baseAddress!, textCount: count, mayWait: false)
    {
      return
    }
    // Full: refuse at once a message the queue can never hold, as the blocking form does.
    try MessageQueueCall.checkCapacity(id: id, textCount: count)
    _ = try await MessageQueueCall.waitingAsync(
      wait, IPCOperation("msgsnd", .messageQueue, id: id),
      wouldBlock: .resourceTemporarilyUnavailable
    ) { () throws(IPCError) -> Bool? in
      try MessageQueueCall.attemptSend(
        id: id, message.bytes.baseAddress!, textCount: count, mayWait: false) ? true : nil
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

  /// ``receive(block:type:timeout:options:)-5tdpe`` for async code (`msgrcv`, polled with
  /// `IPC_NOWAIT`): waits for a message without
  /// blocking a Swift concurrency thread, and honours task cancellation (nothing is taken off
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
    let count = try await MessageQueueCall.waitingAsync(
      wait, IPCOperation("msgrcv", .messageQueue, id: id), wouldBlock: .noMessage
    ) { () throws(IPCError) -> Int? in
      try MessageQueueCall.attemptReceive(
        id: id, block.bytes.baseAddress!, capacity: capacity, type: kernelType, flags: flags,
        mayWait: false, room: "maxMessageSize (\(maxMessageSize) bytes)")
    }
    let base = block.bytes.baseAddress!
    let message = [UInt8](
      UnsafeRawBufferPointer(start: base + MessageQueueCall.headerSize, count: count))
    return (message, Int(base.load(as: CLong.self)))
  }

  /// The messages of `type` as they arrive, as an `AsyncSequence`: each step is an async
  /// ``receive(block:type:timeout:options:)-9bume`` (`msgrcv`, polled off the cooperative pool).
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
