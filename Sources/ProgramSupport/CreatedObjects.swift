import Foundation
import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a demo (or `sysvipc demo`) created, removed at the end and also when SIGINT, SIGTERM or
/// SIGHUP arrives.
///
/// The signals are blocked in every thread and taken by one thread with `sigwait`, so the
/// removal runs as ordinary code (not in a signal handler) even while another thread waits in
/// the kernel. Then the signal is raised again with its default action, so that the shell sees
/// the process end by it. Create this first, before any other thread: threads inherit the mask.
public final class CreatedObjects: Sendable {
  private struct State {
    var removals: [(name: String, remove: @Sendable () throws(IPCError) -> Void)] = []
    var children: [pid_t] = []
    var interrupted = false
  }

  /// What the signal thread did, for `log` to report: each program words it its own way.
  public struct Interruption: Sendable, CustomStringConvertible {
    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    public let signalName: String
    /// Every object recorded when the signal came (all were tried), as "semaphore 12".
    public let recorded: [String]
    /// Those actually removed, the last created first.
    public let removed: [String]

    /// `SIGINT: removed semaphore 12, shared memory 34` (or `removed nothing`).
    public var description: String {
      "\(signalName): removed \(removed.isEmpty ? "nothing" : removed.joined(separator: ", "))"
    }
  }

  private let state = Mutex(State())
  private let log: @Sendable (Interruption) -> Void

  /// - Parameter log: where to report an interruption, before the signal ends the process.
  public init(log: @escaping @Sendable (Interruption) -> Void) {
    self.log = log
    var set = sigset_t()
    sigemptyset(&set)
    for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, number) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
    let waiting = set
    let thread = Thread { [self] in
      var waitSet = waiting
      var number: Int32 = 0
      guard sigwait(&waitSet, &number) == 0 else { return }
      self.interrupt(number)
    }
    thread.start()
  }

  /// Creates an object with `body` and records it; a signal that arrives meanwhile is handled
  /// once it is recorded, so nothing is left behind.
  public func create<T: IPCObject>(_ body: () throws(IPCError) -> T) throws(IPCError) -> T {
    try state.withLock { (state) throws(IPCError) -> T in
      let object = try body()
      let id = object.id
      state.removals.append(
        ("\(T.objectKind.name) \(id)", { () throws(IPCError) in try T.remove(id: id) }))
      return object
    }
  }

  /// Records a child process, to be sent SIGTERM when the process is interrupted.
  public func adopt(_ pid: pid_t) {
    state.withLock { $0.children.append(pid) }
  }

  /// Ends the recorded children (SIGTERM) and forgets them: the conversation failed.
  public func terminateChildren() {
    state.withLock { state in
      for child in state.children { kill(child, SIGTERM) }
      state.children = []
    }
  }

  /// Removes every recorded object, the last created first. Returns what was removed, and the
  /// errors.
  @discardableResult
  public func removeAll() -> (removed: [String], errors: [IPCError]) {
    state.withLock { state in
      var removed: [String] = []
      var errors: [IPCError] = []
      for removal in state.removals.reversed() {
        do throws(IPCError) {
          try removal.remove()
          removed.append(removal.name)
        } catch {
          errors.append(error)
        }
      }
      state.removals = []
      return (removed, errors)
    }
  }

  /// Whether a signal interrupted the process. Waits while the removal runs, so that a thread
  /// that fails because its object vanished reports nothing misleading before the exit.
  public var wasInterrupted: Bool { state.withLock { $0.interrupted } }

  private func interrupt(_ number: Int32) {
    state.withLock { state in
      state.interrupted = true
      for child in state.children { kill(child, SIGTERM) }
      var removed: [String] = []
      for removal in state.removals.reversed() where (try? removal.remove()) != nil {
        removed.append(removal.name)
      }
      let name = number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "SIGHUP"
      log(Interruption(signalName: name, recorded: state.removals.map(\.name), removed: removed))
      state.removals = []
    }
    // End the way the signal would have ended the process.
    signal(number, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, number)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    raise(number)
  }
}
