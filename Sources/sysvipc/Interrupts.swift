import Foundation
import Synchronization
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What this process created, removed also when SIGINT, SIGTERM or SIGHUP arrives.
///
/// The signals are blocked in every thread and taken by one thread with `sigwait`, so the
/// removal runs as ordinary code (not in a signal handler) even while another thread waits in
/// the kernel; then the signal is raised again with its default action, so the shell sees the
/// process end by it. Create it before any other thread starts: threads inherit the mask.
final class CreatedObjects: Sendable {
  private struct State {
    var objects: [(kind: IPCObjectKind, id: Int32)] = []
    var children: [pid_t] = []
    var interrupted = false
  }

  private let state = Mutex(State())
  private static let signals = [SIGINT, SIGTERM, SIGHUP]

  init() {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in Self.signals { sigaddset(&set, signal) }
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

  /// Creates an object with `body` and records it, with signals held off until it is recorded.
  func create<T: IPCObject>(_ body: () throws(IPCError) -> T) throws(IPCError) -> T {
    try state.withLock { (state) throws(IPCError) -> T in
      let object = try body()
      state.objects.append((T.objectKind, object.id))
      return object
    }
  }

  /// Records a child process, to be terminated on interruption.
  func adopt(_ pid: pid_t) {
    state.withLock { $0.children.append(pid) }
  }

  /// Ends the recorded children (SIGTERM): the conversation failed.
  func terminateChildren() {
    state.withLock { state in
      for child in state.children { kill(child, SIGTERM) }
      state.children = []
    }
  }

  /// Removes every recorded object, last created first; returns the errors.
  @discardableResult
  func removeAll() -> [IPCError] {
    state.withLock { state in
      var errors: [IPCError] = []
      for object in state.objects.reversed() {
        do throws(IPCError) { try removeObject(object.kind, id: object.id) } catch {
          errors.append(error)
        }
      }
      state.objects = []
      return errors
    }
  }

  /// Whether a signal interrupted the process. Waits while the removal runs, so that a thread
  /// that fails because its object vanished reports nothing misleading before the exit.
  var wasInterrupted: Bool { state.withLock { $0.interrupted } }

  private func interrupt(_ number: Int32) {
    state.withLock { state in
      state.interrupted = true
      for child in state.children { kill(child, SIGTERM) }
      for object in state.objects.reversed() { try? removeObject(object.kind, id: object.id) }
      let name = number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "SIGHUP"
      printError("sysvipc: \(name): removed \(state.objects.count) object(s) this process created")
      state.objects = []
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
