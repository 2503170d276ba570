import Foundation
import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a demo created, removed at the end and also when SIGINT, SIGTERM or SIGHUP arrives.
///
/// The signals are blocked in every thread and taken by one thread with `sigwait`, so the
/// removal runs as ordinary code (not in a signal handler) even while the main thread waits in
/// the kernel. Then the signal is raised again with its default action, so that the shell sees
/// the demo end by it. Create this first, before any other thread: threads inherit the mask.
public final class CreatedObjects: Sendable {
  private struct State {
    var removals: [(name: String, remove: @Sendable () throws(IPCError) -> Void)] = []
    var children: [pid_t] = []
    var interrupted = false
  }

  private let state = Mutex(State())
  private let log: @Sendable (String) -> Void

  /// - Parameter log: where to report an interruption.
  public init(log: @escaping @Sendable (String) -> Void) {
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

  /// Records a child process, to be sent SIGTERM when the demo is interrupted.
  public func adopt(_ pid: pid_t) {
    state.withLock { $0.children.append(pid) }
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

  /// Whether a signal interrupted the demo. Waits while the removal runs.
  public var wasInterrupted: Bool { state.withLock { $0.interrupted } }

  private func interrupt(_ number: Int32) {
    state.withLock { state in
      state.interrupted = true
      for child in state.children { kill(child, SIGTERM) }
      var removed: [String] = []
      for removal in state.removals.reversed() where (try? removal.remove()) != nil {
        removed.append(removal.name)
      }
      state.removals = []
      let name = number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "SIGHUP"
      log("\(name): removed \(removed.isEmpty ? "nothing" : removed.joined(separator: ", "))")
    }
    signal(number, SIG_DFL)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, number)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    raise(number)
  }
}
