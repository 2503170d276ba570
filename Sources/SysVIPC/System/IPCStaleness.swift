#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// Whether an object looks abandoned, and why: the answer of
/// ``IPCSystem/staleness(of:olderThan:now:)``.
///
/// An object is *stale* when every one of these holds, from what the kernel keeps about it:
///
/// - **No process known to have used it is alive.** Shared memory: the creator
///   (`shm_cpid`) and the last to attach or detach (`shm_lpid`). Message queues: the last
///   sender (`msg_lspid`) and the last receiver (`msg_lrpid`). Semaphore sets: the last process
///   to operate on each semaphore (`sempid`, `semctl(GETPID)`). A pid of 0 means "never". A
///   process is alive when `kill(pid, 0)` finds it and it is not a zombie.
/// - **Nothing uses it now.** Shared memory: no attachment (`shm_nattch` is 0). Semaphore sets:
///   no process waits on any semaphore (`semncnt` and `semzcnt`, `GETNCNT` and `GETZCNT`, are
///   0). The kernel keeps no count of a queue's waiting receivers or senders.
/// - **It has not changed for the given time.** The latest of the times the kernel keeps
///   (``IPCObjectInfo/lastActivityTime``: `ctime`, and `sem_otime`; `shm_atime`, `shm_dtime`;
///   `msg_stime`, `msg_rtime`) is at least that long ago.
///
/// What the rule cannot know, and why the age matters:
///
/// - **Pid reuse.** A dead user's pid may belong to an unrelated process now: the object then
///   looks alive (a safe error).
/// - **Other pid namespaces.** Since Linux 4.17 the kernel translates a recorded pid into the
///   reader's pid namespace: from the host a container's processes show with their host pids,
///   but from inside a container a process outside its pid namespace reads as 0, "never" (an
///   object used only from the host then looks unused). Older kernels report the number as the
///   using process saw it in its own namespace, which may name another process or none.
/// - **Users the kernel does not record.** A queue's creator, a process blocked in `msgrcv` on
///   an empty queue, a program that opened an object and has not used it yet, and an object
///   meant to outlive its creator (a configuration segment written once) all leave no pid. Only
///   the time since the last change separates those from leftovers: choose an age longer than
///   any quiet spell of the programs that use the objects.
/// - **Permissions.** A semaphore set's per-semaphore pids need read permission; a set the
///   caller may not read is never reported stale.
public struct IPCStaleness: Hashable, Sendable {
  /// Whether the object is stale by the rule above.
  public var isStale: Bool
  /// Why, in words: the first condition that failed, or the evidence that all held
  /// (`"every process that used it is gone (pids 812, 815); idle 2h 5m"`).
  public var reason: String
  /// The pids the kernel names as users of the object (0s left out), each once.
  public var processIDs: [pid_t]
  /// The time since ``IPCObjectInfo/lastActivityTime``; `nil` when the kernel keeps none.
  public var idleTime: Duration?

  /// Creates an answer; ``IPCSystem/staleness(of:olderThan:now:)`` gives the real one.
  public init(isStale: Bool, reason: String, processIDs: [pid_t], idleTime: Duration?) {
    self.isStale = isStale
    self.reason = reason
    self.processIDs = processIDs
    self.idleTime = idleTime
  }
}

extension IPCObjectInfo {
  /// The latest time the kernel recorded a change or use of the object: the last of `ctime`
  /// (creation or `IPC_SET`), and `sem_otime` (last `semop`) for semaphore sets, `shm_atime`
  /// and `shm_dtime` (last attach and detach) for shared memory, `msg_stime` and `msg_rtime`
  /// (last send and receive) for message queues. `nil` when the kernel keeps none.
  public var lastActivityTime: Date? {
    [
      lastChangeTime, lastOperationTime, lastAttachTime, lastDetachTime, lastSendTime,
      lastReceiveTime,
    ].compactMap { $0 }.max()
  }

  /// The pids the kernel keeps in the object's own status: `shm_cpid` and `shm_lpid` for
  /// shared memory, `msg_lspid` and `msg_lrpid` for message queues; none for semaphore sets
  /// (their pids are per semaphore: `SemaphoreSet/lastPID(at:)`). Zeros ("never") left out.
  public var recordedProcessIDs: [pid_t] {
    var seen: [pid_t] = []
    for pid in [creatorPID, lastPID, lastSendPID, lastReceivePID] {
      if let pid, pid > 0, !seen.contains(pid) { seen.append(pid) }
    }
    return seen
  }
}

extension IPCSystem {
  /// Every object on the system that is stale by ``IPCStaleness``'s rule: no process known to
  /// have used it alive, nothing using it, and no change for at least `age`.
  ///
  /// A program can remove its own leftovers at start-up with it, choosing its objects by key
  /// or creator (`cuid`) first:
  ///
  /// ```swift
  /// for object in try IPCSystem.staleObjects(olderThan: .seconds(3600))
  /// where object.cuid == geteuid() && myKeys.contains(object.key) {
  ///   try? IPCSystem.remove(object)
  /// }
  /// ```
  ///
  /// - Parameters:
  ///   - age: how long an object must have been unchanged (``IPCObjectInfo/lastActivityTime``);
  ///     see ``IPCStaleness`` for why it matters.
  ///   - kinds: the kinds to look at; all by default.
  /// - Throws: the errors of ``objects(of:)``.
  public static func staleObjects(
    olderThan age: Duration, of kinds: [IPCObjectKind] = IPCObjectKind.allCases
  ) throws(IPCError) -> [IPCObjectInfo] {
    let now = Date()
    var result: [IPCObjectInfo] = []
    for kind in kinds {
      for object in try objects(of: kind)
      where staleness(of: object, olderThan: age, now: now).isStale {
        result.append(object)
      }
    }
    return result
  }

  /// Whether `object` is stale by ``IPCStaleness``'s rule, and why.
  ///
  /// For a semaphore set it reads each semaphore's last pid and waiters
  /// (`semctl(GETPID)`, `GETNCNT`, `GETZCNT`), which needs read permission; a set that cannot
  /// be read (or is gone) is reported not stale, with the reason. It never throws: an object
  /// that cannot be judged is not stale.
  ///
  /// - Parameters:
  ///   - object: a snapshot from ``objects()`` or ``object(_:id:)``.
  ///   - age: how long it must have been unchanged.
  ///   - now: the present, for the age (the kernel's times are wall-clock seconds).
  public static func staleness(
    of object: IPCObjectInfo, olderThan age: Duration, now: Date = Date()
  ) -> IPCStaleness {
    var pids = object.recordedProcessIDs
    let idle = object.lastActivityTime.map { time in
      Duration.milliseconds(Int64(((now.timeIntervalSince(time)) * 1000).rounded(.down)))
    }
    func answer(_ stale: Bool, _ reason: String) -> IPCStaleness {
      IPCStaleness(isStale: stale, reason: reason, processIDs: pids, idleTime: idle)
    }
    switch object.kind {
    case .sharedMemory:
      if let attached = object.attachCount, attached > 0 {
        return answer(false, "attached \(attached) time\(attached == 1 ? "" : "s")")
      }
    case .semaphore:
      do throws(IPCError) {
        let set = try SemaphoreSet(id: object.id)
        for index in 0..<set.count {
          let waiting = try set.waitingForNonzero(at: index) + set.waitingForZero(at: index)
          if waiting > 0 {
            return answer(false, "\(waiting) process(es) wait on semaphore \(index)")
          }
          let pid = try set.lastPID(at: index)
          if pid > 0, !pids.contains(pid) { pids.append(pid) }
        }
      } catch {
        return answer(false, "cannot tell: \(error)")
      }
    case .messageQueue:
      break
    }
    if let alive = pids.first(where: isAlive) {
      return answer(false, "used by pid \(alive), which is alive")
    }
    if let idle, idle < age {
      return answer(false, "changed \(describe(idle)) ago, less than \(describe(age))")
    }
    let users =
      pids.isEmpty
      ? "no process recorded as using it"
      : "every process that used it is gone (pid\(pids.count == 1 ? "" : "s") "
        + pids.map(String.init).joined(separator: ", ") + ")"
    return answer(true, users + (idle.map { "; idle \(describe($0))" } ?? ""))
  }

  /// Whether `pid` names a live process: `kill(pid, 0)` finds it (or is refused permission,
  /// which also means it exists) and, on Linux, `/proc/PID/stat` does not show a zombie.
  static func isAlive(_ pid: pid_t) -> Bool {
    guard pid > 0 else { return false }
    guard system_kill(pid, 0) == 0 || errno == EPERM else { return false }
    #if os(Linux)
      // "/proc/PID/stat" is built and read on the stack: nothing is allocated per pid.
      return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { buffer in
        var length = 0
        func append(_ byte: UInt8) {
          buffer[length] = byte
          length += 1
        }
        for byte in "/proc/".utf8 { append(byte) }
        var digits = UInt32(pid)
        var divisor: UInt32 = 1
        while divisor <= digits / 10 { divisor *= 10 }
        while divisor > 0 {
          append(UInt8(ascii: "0") + UInt8(digits / divisor))
          digits %= divisor
          divisor /= 10
        }
        for byte in "/stat".utf8 { append(byte) }
        append(0)
        let count = buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: length) {
          system_readFile($0, into: UnsafeMutableRawBufferPointer(buffer))
        }
        guard count > 0 else { return true }  // unreadable: kill already found it
        // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state follows the
        // last ')'.
        var close = count - 1
        while close >= 0 && buffer[close] != UInt8(ascii: ")") { close -= 1 }
        guard close >= 0, close + 2 < count else { return true }
        let state = buffer[close + 2]
        return state != UInt8(ascii: "Z") && state != UInt8(ascii: "X")
      }
    #else
      return true
    #endif
  }

  /// `1d 2h`, `5m 3s`, `42s`: the two largest units.
  static func describe(_ duration: Duration) -> String {
    var seconds = max(0, duration.components.seconds)
    let units: [(String, Int64)] = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]
    var parts: [String] = []
    for (name, size) in units where seconds >= size || (name == "s" && parts.isEmpty) {
      parts.append("\(seconds / size)\(name)")
      seconds %= size
      if parts.count == 2 { break }
    }
    return parts.joined(separator: " ")
  }

  /// Removes `object` (`IPC_RMID` by its id, through its kind's type).
  ///
  /// - Throws: ``IPCError/Kind/existential`` when it is gone, ``IPCError/Kind/permissions``
  ///   when the caller is neither its owner, its creator nor privileged.
  public static func remove(_ object: IPCObjectInfo) throws(IPCError) {
    switch object.kind {
    case .semaphore: try SemaphoreSet.remove(id: object.id)
    case .sharedMemory: try SharedMemory.remove(id: object.id)
    case .messageQueue: try MessageQueue.remove(id: object.id)
    }
  }
}
