import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// The signal that ends a wait in the kernel early. System V waits (semop, semtimedop, msgrcv,
// msgsnd) return EINTR after any signal handler runs, whatever SA_RESTART says (signal(7); XNU
// turns an interrupted System V sleep into EINTR too), so a wait blocks with no timeout and is
// ended by `pthread_kill` of its thread with this signal, whose handler does nothing: at a
// deadline the kernel cannot keep (msgrcv, msgsnd; macOS's semop), or when its task is cancelled.

/// The signal: chosen and installed once per process, on the first wait that needs it.
enum WaitSignal {
  /// 0 until installed; then the installed signal. Read on every wait that may be ended early.
  private static let installedNumber = Atomic<Int32>(0)
  /// What an application asked for with ``IPCSystem/setWaitSignal(_:)``, before installation.
  private static let state = Mutex<Int32?>(nil)

  /// The installed signal, installing it first if need be.
  static var number: Int32 {
    let number = installedNumber.load(ordering: .acquiring)
    return number != 0 ? number : install()
  }

  /// The signal a wait would use now: the installed one, the configured one, or the default.
  static var current: Int32 {
    let number = installedNumber.load(ordering: .acquiring)
    if number != 0 { return number }
    return state.withLock { $0 } ?? defaultSignal()
  }

  private static func install() -> Int32 {
    state.withLock { configured in
      let installed = installedNumber.load(ordering: .acquiring)
      if installed != 0 { return installed }
      let number = configured ?? defaultSignal()
      // SA_RESTART: a late signal that finds its thread in another call (read, write…) resumes
      // it; System V waits are never restarted, which is what ends them.
      _ = system_signalAction(number, install: { _ in }, flags: Int32(SA_RESTART))
      installedNumber.store(number, ordering: .releasing)
      return number
    }
  }

  /// Linux: the highest real-time signal still at its default disposition (an application
  /// that uses real-time signals usually counts up from SIGRTMIN). macOS has none: SIGURG,
  /// ignored by default and meant for out-of-band socket data that hardly anyone uses (the Go
  /// runtime preempts goroutines with it for the same reason).
  private static func defaultSignal() -> Int32 {
    #if os(Linux)
      let lowest = __libc_current_sigrtmin()
      var candidate = __libc_current_sigrtmax()
      while candidate > lowest {
        let current = system_signalAction(candidate, install: nil, flags: 0)
        if current.ok && current.isDefault { return candidate }
        candidate -= 1
      }
      return __libc_current_sigrtmax()
    #else
      return SIGURG
    #endif
  }

  /// Sets the signal before the first wait (``IPCSystem/setWaitSignal(_:)``).
  static func configure(_ number: Int32) throws(IPCError) {
    let refused: Set<Int32> = [
      SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS, SIGCHLD,
    ]
    #if os(Linux)
      let highest = __libc_current_sigrtmax()
    #else
      let highest = Int32(NSIG) - 1
    #endif
    guard number >= 1, number <= highest, !refused.contains(number) else {
      throw .invalid(
        "setWaitSignal: signal \(number) cannot end waits (it must be catchable, not a fault "
          + "or job-control signal, and at most \(highest))")
    }
    let outcome: IPCError? = state.withLock { configured in
      let installed = installedNumber.load(ordering: .acquiring)
      if installed != 0 && installed != number {
        return IPCError(
          .busy,
          "setWaitSignal: signal \(installed) is installed already (the first wait that needed "
            + "it installed it); set the signal before any wait")
      }
      configured = number
      return nil
    }
    if let outcome { throw outcome }
  }

  /// For the pool's threads: every signal blocked but this one, so that signals meant for the
  /// process are handled by the application's threads and never interrupt a wait here.
  static func maskForWaitThread() {
    var set = sigset_t()
    sigfillset(&set)
    sigdelset(&set, number)
    system_threadSignalMask(SIG_SETMASK, &set, nil)
  }

  /// For a caller's thread about to wait: unblocks the signal; returns whether it was blocked
  /// (then ``restore(blocked:)`` blocks it again).
  static func unblockInThisThread() -> Bool {
    var set = sigset_t()
    var old = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, number)
    system_threadSignalMask(SIG_UNBLOCK, &set, &old)
    return sigismember(&old, number) == 1
  }

  static func restore(blocked: Bool) {
    guard blocked else { return }
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, number)
    system_threadSignalMask(SIG_BLOCK, &set, nil)
  }
}

extension IPCSystem {
  /// The signal that ends a blocked wait early: at a timeout the kernel cannot keep itself
  /// (`msgrcv`, `msgsnd`, and `semop` on macOS), and when the task of an async wait is
  /// cancelled. See <doc:Concurrency>.
  ///
  /// By default, on Linux, the highest real-time signal (`SIGRTMAX` downwards) whose
  /// disposition is still the default when the first such wait begins; on macOS, `SIGURG`.
  /// The package installs a handler that does nothing, once, with `SA_RESTART`, and sends the
  /// signal only to its own waiting threads (and to a caller's thread during a timed message
  /// wait).
  public static var waitSignal: Int32 { WaitSignal.current }

  /// Chooses the signal that ends waits early (see ``waitSignal``), for an application that
  /// uses the default one itself. Call it before the first wait: once installed, the signal
  /// cannot change.
  ///
  /// - Throws: ``IPCError/Kind/invalidArgument`` for a signal that cannot serve (`SIGKILL`,
  ///   `SIGSTOP`, a fault signal such as `SIGSEGV`, `SIGCHLD`, or out of range);
  ///   ``IPCError/Kind/busy`` when another signal is installed already.
  public static func setWaitSignal(_ signal: Int32) throws(IPCError) {
    try WaitSignal.configure(signal)
  }
}
