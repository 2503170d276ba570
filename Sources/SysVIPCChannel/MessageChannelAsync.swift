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
// caller's task with no thread hop; a wait runs on a thread of its own, in slices, so that it
// never blocks one of Swift concurrency's threads and notices cancellation between slices.
extension MessageChannel {
  /// ``receive(block:timeout:)`` for async code. Cancellation ends the wait with
  /// `IPCError.isCancellation` and consumes nothing.
  public func receive(timeout: Duration? = nil) async throws(IPCError) -> (
    message: [UInt8], type: Int
  ) {
    try await waitingOffPool("receive", timeout: timeout) { (block, slice) throws(IPCError) in
      try self.receive(block: block, timeout: slice)
    }
  }

  /// ``send(_:type:block:timeout:)-(Sequence<UInt8>,_,_,_)`` for async code. Cancellation ends
  /// the wait with `IPCError.isCancellation` and sends nothing.
  public func send(_ message: [UInt8], type: Int = 1, timeout: Duration? = nil)
    async throws(IPCError)
  {
    try await waitingOffPool("send", timeout: timeout) { (block, slice) throws(IPCError) in
      try self.send(message, type: type, block: block, timeout: slice)
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

  /// Runs `attempt` without blocking first, then on a thread of its own in slices of at most
  /// 10 ms (`attempt` gets block = true and the slice) until it succeeds, fails otherwise than
  /// by timing out, `timeout` passes, or the task is cancelled.
  private func waitingOffPool<T: Sendable>(
    _ what: String, timeout: Duration?,
    _ attempt: @escaping @Sendable (_ block: Bool, _ slice: Duration?) throws(IPCError) -> T
  ) async throws(IPCError) -> T {
    do throws(IPCError) {
      return try attempt(false, nil)
    } catch  where error.kind == .busy && error.errno == .wouldBlock {
      // Not yet: wait below.
    }
    if timeout == .zero {
      throw IPCError(.busy, "MessageChannel.\(what): timed out", errno: .wouldBlock)
    }
    let deadline = timeout.map { csvc_now_ns() &+ Self.nanoseconds($0) }
    let cancelled = Atomic<Bool>(false)
    let result: Result<T, IPCError> = await withTaskCancellationHandler {
      await withCheckedContinuation {
        (continuation: CheckedContinuation<Result<T, IPCError>, Never>) in
        let started = packageStartThread {
          while true {
            if cancelled.load(ordering: .acquiring) {
              return continuation.resume(
                returning: .failure(
                  IPCError(.busy, "MessageChannel.\(what): cancelled", errno: .canceled)))
            }
            var slice: Int64 = 10_000_000
            if let deadline { slice = max(0, min(slice, deadline &- csvc_now_ns())) }
            do throws(IPCError) {
              return continuation.resume(
                returning: .success(try attempt(true, .nanoseconds(slice))))
            } catch  where error.kind == .busy && error.errno == .wouldBlock {
              if let deadline, csvc_now_ns() >= deadline {
                return continuation.resume(returning: .failure(error))
              }
            } catch {
              return continuation.resume(returning: .failure(error))
            }
          }
        }
        // No thread: fail the wait (nothing was consumed) rather than block this cooperative
        // thread, which the sender or receiver may need to run.
        if started != 0 {
          continuation.resume(
            returning: .failure(
              IPCError(
                .system, "MessageChannel.\(what): no thread to wait on (pthread_create failed)",
                errno: Errno(rawValue: started))))
        }
      }
    } onCancel: {
      cancelled.store(true, ordering: .releasing)
    }
    return try result.get()
  }
}
