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

/// A child process started with `posix_spawn`, with a clean signal state (the parent blocks
/// its termination signals; the child must not inherit that).
public final class ChildProcess: Sendable {
  /// The child's process id.
  public let pid: pid_t
  private let status = Mutex<Int32?>(nil)

  /// Starts `executable` with `arguments`; standard input, output and error are shared.
  public init(executable: String, _ arguments: [String]) throws {
    #if canImport(Darwin)
      var attributes: posix_spawnattr_t? = nil
    #else
      var attributes = posix_spawnattr_t()
    #endif
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, number) }
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    #if canImport(Darwin)
      let environment = _NSGetEnviron().pointee
    #else
      let environment = environ
    #endif
    let rc = posix_spawn(&child, executable, nil, &attributes, argv, environment)
    guard rc == 0 else {
      throw IPCError(.system, "posix_spawn \(executable): \(String(cString: strerror(rc)))")
    }
    pid = child
  }

  /// Whether the child has ended (reaping it).
  public var hasExited: Bool {
    status.withLock { status in
      if status != nil { return true }
      var raw: Int32 = 0
      if waitpid(pid, &raw, WNOHANG) == pid { status = Self.exitStatus(raw) }
      return status != nil
    }
  }

  /// Waits for the child to end: its exit status, or 128 + the signal that ended it.
  public func waitForExit() -> Int32 {
    status.withLock { status in
      if let status { return status }
      var raw: Int32 = 0
      while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
      let result = Self.exitStatus(raw)
      status = result
      return result
    }
  }

  private static func exitStatus(_ raw: Int32) -> Int32 {
    (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
  }
}
