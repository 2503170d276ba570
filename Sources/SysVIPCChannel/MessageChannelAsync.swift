import CSysVIPCChannel
import Synchronization
import SysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// The async forms: a message that is already there (or space that is free) is taken on the
// caller's task with no thread hop; a wait blocks on a thread of SysVIPC's wait pool (never on
// one of Swift concurrency's threads), with its ticket, so that cancelling the task ends a sleep
// on the semaphore set at once (the wait signal), as every async wait of SysVIPC. A task that
// prefers `IPCWaitExecutor` waits on its own thread, with no hand-over.
extension MessageChannel {
  /// ``receive(block:timeout:)`` for async code. Cancellation ends the wait with
  /// `IPCError.isCancellation` and consumes nothing.
  public func receive(timeout: Duration? = nil) async throws(IPCError) -> (
    message: [UInt8], type: Int
  ) {
    try await waitingOffPool("receive", timeout: timeout) {
      (block, timeout, stop) throws(IPCError) in
      try self.withReceived(block: block, timeout: timeout, stop: stop) {
        (message, type) throws(IPCError) in (Array(message), type)
      }
    }
  }

  /// ``send(_:type:block:timeout:)-(Sequence<UInt8>,_,_,_)`` for async code. Cancellation ends
  /// the wait with `IPCError.isCancellation` and sends nothing.
  public func send(_ message: [UInt8], type: Int = 1, timeout: Duration? = nil)
    async throws(IPCError)
  {
    try await waitingOffPool("send", timeout: timeout) { (block, timeout, stop) throws(IPCError) in
      let position = try self.claim(
        count: message.count, type: type, block: block, timeout: timeout, stop: stop)
      message.withUnsafeBytes { bytes in
        if let source = bytes.baseAddress {
          self.payload(position).copyMemory(from: source, byteCount: bytes.count)
        }
      }
      try self.commit(position, type: type, count: message.count)
    }
  }

  /// The channel's messages as an `AsyncSequence`, received one by one with
  /// ``receive(timeout:)``. It ends when every producer has gone if
  /// ``endsWhenProducersGone`` is set, when the channel is removed, or when its task is
  /// cancelled, as `MessageQueue.messages(type:options:)` does.
  public func messages() -> Messages { Messages(channel: self) }

  /// The messages of a channel: see ``MessageChannel/messages()``.
  public struct Messages: AsyncSequence, Sendable {
    public typealias Element = (message: [UInt8], type: Int)
    public typealias Failure = IPCError
    let channel: MessageChannel

    /// An iterator that receives the channel's messages one by one (`AsyncSequence`).
    public func makeAsyncIterator() -> Iterator { Iterator(channel: channel) }

    /// Receives the next message on each call.
    public struct Iterator: AsyncIteratorProtocol {
      public typealias Element = (message: [UInt8], type: Int)
      let channel: MessageChannel
      var finished = false

      /// The next message, or `nil` once every producer has gone (with
      /// ``MessageChannel/endsWhenProducersGone``), the channel is removed, or the task is
      /// cancelled.
      public mutating func next() async throws(IPCError) -> Element? {
        guard !finished, !Task.isCancelled else { return nil }
        do {
          return try await channel.receive()
        } catch  where error.isProducersGone || error.kind == .existential || error.isCancellation {
          finished = true
          return nil
        }
      }
    }
  }

  /// Runs `attempt` without blocking first, then, when it would block, blocking on a thread of
  /// the wait pool (`packageWaitOffPool`) with what is left of `timeout` and the wait's ticket
  /// (`attempt` gets block = true), which the task's cancellation stops.
  private func waitingOffPool<T: Sendable>(
    _ what: String, timeout: Duration?,
    _ attempt:
      @escaping @Sendable (_ block: Bool, _ timeout: Duration?, _ stop: WaitTicket?)
      throws(IPCError) -> T
  ) async throws(IPCError) -> T {
    do throws(IPCError) {
      return try attempt(false, nil, nil)
    } catch  where error.kind == .busy && error.errno == .wouldBlock {
      // Not yet: wait below.
    }
    if timeout == .zero {
      throw IPCError(.busy, "MessageChannel.\(what): timed out", errno: .wouldBlock)
    }
    let deadline = timeout.map { csvc_now_ns() &+ Self.nanoseconds($0) }
    do {
      return try await packageWaitOffPool("MessageChannel.\(what)") { (stop) throws(IPCError) in
        let left = deadline.map { Duration.nanoseconds(max(0, $0 &- csvc_now_ns())) }
        return try attempt(true, left, stop)
      }
    } catch  where error.isCancellation {
      throw IPCError(.busy, "MessageChannel.\(what): cancelled", errno: .canceled)
    }
  }
}
