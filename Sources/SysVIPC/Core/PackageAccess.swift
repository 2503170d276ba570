import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// Entry points for the other targets of this package (SysVIPCChannel), at `package` access:
// thin wrappers over the system-call layer, so that those targets make no System V call of their
// own, retry EINTR nowhere else, and map errno to IPCError in the one place that does it.

/// One operation on semaphore `index` of set `id`: `semtimedop` with the time left before
/// `timeoutNanoseconds` (`semop` when it is `nil`), EINTR retried by ``retryingInterrupts``,
/// other failures mapped by ``IPCError/system(_:_:subject:)``. Allocates nothing, also when it
/// times out.
///
/// With `stop` (an async wait's ticket, from ``packageWaitOffPool(_:_:)``), the wait blocks in the
/// kernel as every async wait of the library does, and stopping the ticket (cancellation) ends it
/// at once with the cancellation error.
///
/// - Returns: true when the operation was done, false when it would block (`IPC_NOWAIT`) or the
///   timeout passed (`EAGAIN`).
@inline(__always)
package func packageSemaphoreOperation(
  id: Int32, index: UInt16, delta: Int16, flags: Int16, timeoutNanoseconds: Int64?,
  stop: WaitTicket? = nil
) throws(IPCError) -> Bool {
  var operation = csysvipc_sembuf(number: index, operation: delta, flags: flags)
  if let stop {
    return try withUnsafeMutablePointer(to: &operation) { (pointer) throws(IPCError) -> Bool in
      do throws(IPCError) {
        try SemaphoreCall.perform(
          id: id, UnsafeMutableBufferPointer(start: pointer, count: 1),
          timeoutNanoseconds: timeoutNanoseconds, ticket: stop, call: "semop")
        return true
      } catch  where error.kind == .busy && !error.isCancellation {
        return false
      }
    }
  }
  let op = IPCOperation("semop", .semaphore, id: id)
  let deadline = timeoutNanoseconds.map { Deadline(afterNanoseconds: $0) }
  let rc = try withUnsafeMutablePointer(to: &operation) { (pointer) throws(IPCError) -> Int32 in
    let ops = UnsafeMutableBufferPointer(start: pointer, count: 1)
    return try retryingInterrupts(op, deadline: deadline) { remaining in
      let rc: Int32
      if remaining >= 0, systemHasSemtimedop {
        rc = system_semtimedop(id, ops, remaining)
      } else if remaining >= 0 {
        // No semtimedop (macOS): poll without blocking, in 1 ms steps, until the deadline.
        pointer.pointee.flags = flags | Int16(IPC_NOWAIT)
        var result = system_semop(id, ops)
        while result == -1, currentErrno == .resourceTemporarilyUnavailable,
          flags & Int16(IPC_NOWAIT) == 0, deadline?.hasPassed == false
        {
          system_sleep(1_000_000)
          result = system_semop(id, ops)
        }
        rc = result
      } else {
        rc = system_semop(id, ops)
      }
      // A timeout is an answer, not an error: no IPCError (and no allocation) for it.
      return rc == -1 && currentErrno == .resourceTemporarilyUnavailable ? 1 : rc
    }
  }
  return rc == 0
}
