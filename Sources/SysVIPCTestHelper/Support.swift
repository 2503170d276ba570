import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Prints one `key=value` line (line-buffered, so the tests see it at once).
func report(_ key: String, _ value: String) {
  print("\(key)=\(value)")
  fflush(nil)
}

func fail(_ message: String) -> Never {
  print("result=usage message=\(message)")
  exit(2)
}

func monotonicSeconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Drops to nobody (uid and gid 65534, no supplementary groups) and proves it: the tests read
/// `privileges=dropped` before trusting a permission result.
func dropToNobody() {
  let nobody: UInt32 = 65534
  guard setgroups(0, nil) == 0, setgid(nobody) == 0, setuid(nobody) == 0 else {
    fail("could not drop privileges: errno \(errno)")
  }
  guard getuid() == nobody, geteuid() == nobody, getgid() == nobody, getegid() == nobody,
    setuid(0) == -1
  else { fail("still privileged after dropping") }
  report("uid", String(getuid()))
  report("euid", String(geteuid()))
  report("privileges", "dropped")
}

nonisolated(unsafe) var signalCount: Int32 = 0

/// The handler's work: it keeps errno as it found it (the interrupted code may be about to read
/// it), as a signal handler must.
private func countSignal() {
  let saved = errno
  signalCount &+= 1
  errno = saved
}

func installSignalCounter(restart: Bool) {
  var action = sigaction()
  #if canImport(Glibc)
    action.__sigaction_handler.sa_handler = { _ in countSignal() }
  #elseif canImport(Musl)
    action.__sa_handler.sa_handler = { _ in countSignal() }
  #else
    action.__sigaction_u.__sa_handler = { _ in countSignal() }
  #endif
  sigemptyset(&action.sa_mask)
  action.sa_flags = restart ? Int32(SA_RESTART) : 0
  sigaction(SIGUSR1, &action, nil)
}

/// Positional and `--name value` arguments.
struct Arguments {
  var words: [String]
  init(_ words: [String]) { self.words = words }

  mutating func next(_ what: String) -> String {
    guard let index = words.firstIndex(where: { !$0.hasPrefix("--") }) else {
      fail("missing \(what)")
    }
    return words.remove(at: index)
  }

  mutating func int32(_ what: String) -> Int32 {
    guard let value = Int32(next(what)) else { fail("\(what) is not a number") }
    return value
  }

  mutating func option(_ name: String) -> String? {
    guard let index = words.firstIndex(of: "--\(name)"), index + 1 < words.count else {
      return nil
    }
    let value = words[index + 1]
    words.removeSubrange(index...(index + 1))
    return value
  }

  mutating func flag(_ name: String) -> Bool {
    guard let index = words.firstIndex(of: "--\(name)") else { return false }
    words.remove(at: index)
    return true
  }

  mutating func timeout() -> Duration? {
    option("timeout").flatMap(Double.init).map { Duration.milliseconds(Int64($0 * 1000)) }
  }

  mutating func mode() -> IPCPermissions {
    option("mode").flatMap { UInt32($0, radix: 8) }.map(IPCPermissions.init(rawValue:)) ?? 0o600
  }

  mutating func key() -> IPCKey { IPCKey(rawValue: int32("key")) }
}

/// Waits for a signal forever: for helpers the test kills.
func holdForever() -> Never {
  report("holding", "yes")
  while true { pause() }
}

/// The target of the symbolic link at `path` (`readlink`), or `nil`.
func symbolicLink(_ path: String) -> String? {
  var buffer = [CChar](repeating: 0, count: 256)
  let count = readlink(path, &buffer, buffer.count - 1)
  guard count > 0 else { return nil }
  return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The process that started this helper (the test process, or its launcher).
private let originalParent = getppid()

/// Ends this helper as soon as the process that started it has gone (it was reparented): a test
/// run that crashes or is killed leaves no helper behind, blocked in a wait for ever. A thread
/// looks every 100 ms (a parent-death signal would not do: Linux sends it when the *thread*
/// that started the helper ends, and the tests start helpers from threads that end).
func exitWhenOrphaned() {
  _ = originalParent
  #if canImport(Darwin)
    var thread: pthread_t?
  #else
    var thread = pthread_t()
  #endif
  // The watcher blocks every signal (it inherits this mask), so that the signals the tests send
  // the helper are handled by its own threads, as before it existed.
  var all = sigset_t()
  var previous = sigset_t()
  sigfillset(&all)
  pthread_sigmask(SIG_SETMASK, &all, &previous)
  defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
  let started = pthread_create(
    &thread, nil,
    { _ in
      while getppid() == originalParent { usleep(100_000) }
      _exit(3)
    }, nil)
  if started == 0 {
    #if canImport(Darwin)
      pthread_detach(thread!)
    #else
      pthread_detach(thread)
    #endif
  }
}
