import CSysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The calling thread's `errno`.
@inline(__always)
var currentErrno: Errno { Errno(rawValue: errno) }

/// Runs a system call until it is not interrupted by a signal: the one place that retries EINTR.
///
/// A timed wait passes a ``Deadline``: each retry gets only the time that remains, so a signal
/// never extends the wait (Linux returns EINTR from semop, msgsnd and msgrcv after any handled
/// signal, and after SIGSTOP/SIGCONT even without a handler).
///
/// - Parameters:
///   - op: what the call does, for the error.
///   - deadline: the end of a timed wait, or `nil`.
///   - call: the system call; it receives the nanoseconds left before `deadline` (0 when it has
///     passed), or -1 without a deadline, and returns -1 with errno set on failure.
@inline(__always)
func retryingInterrupts<R: FixedWidthInteger>(
  _ op: IPCOperation, deadline: Deadline? = nil, _ call: (_ remainingNanoseconds: Int64) -> R
) throws(IPCError) -> R {
  while true {
    let rc = call(deadline?.remainingNanoseconds ?? -1)
    if rc != -1 { return rc }
    let error = currentErrno
    if error == .interrupted { continue }
    throw IPCError.system(error, op)
  }
}

/// A point on the monotonic clock at which a timed wait ends.
struct Deadline: Sendable {
  /// CLOCK_MONOTONIC, nanoseconds.
  let uptimeNanoseconds: Int64

  /// A deadline `nanoseconds` from now (saturating).
  init(afterNanoseconds nanoseconds: Int64) {
    let (sum, overflow) = system_monotonicNanoseconds().addingReportingOverflow(nanoseconds)
    uptimeNanoseconds = overflow ? .max : sum
  }

  /// Nanoseconds until the deadline; 0 once it has passed.
  var remainingNanoseconds: Int64 { max(0, uptimeNanoseconds - system_monotonicNanoseconds()) }

  var hasPassed: Bool { remainingNanoseconds == 0 }
}

/// Checks a timeout and converts it to nanoseconds (saturating at about 292 years).
///
/// `nil` means wait forever and stays `nil`; a negative duration is refused.
func timeoutNanoseconds(_ timeout: Duration?, _ operation: StaticString) throws(IPCError) -> Int64?
{
  guard let timeout else { return nil }
  let (seconds, attoseconds) = timeout.components
  guard seconds >= 0, attoseconds >= 0 else {
    throw .invalid("\(operation): timeout \(timeout) is negative")
  }
  let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
  if overflow { return .max }
  let (total, overflow2) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
  return overflow2 ? .max : total
}

/// Sleeps the calling thread for up to `nanoseconds`; used where a platform has no timed wait
/// and one is emulated by polling.
func sleepNanoseconds(_ nanoseconds: Int64) { system_sleep(nanoseconds) }
