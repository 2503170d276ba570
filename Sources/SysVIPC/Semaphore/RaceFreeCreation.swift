import CSysVIPC
import SystemPackage

/// Open-or-create without the initialisation race of System V semaphores.
///
/// `semget(IPC_CREAT)` cannot tell its caller whether it created the set, and a new set's values
/// are not defined by the standard. Two processes that both "create and initialise" can reset a
/// semaphore the other already uses (Stevens: "a fatal flaw in the design of System V
/// semaphores"). The remedy built in here is Stevens's: exactly one racer creates the set
/// exclusively, sets the values and then performs one `semop` so that `sem_otime` becomes
/// non-zero; every other racer opens the set and waits until `sem_otime` is set before using it.
extension SemaphoreSet {
  /// Opens the set at `key`, or creates and initialises it, race-free: of many processes calling
  /// this at once, exactly one initialises the values, and every caller returns only once they
  /// are initialised.
  ///
  /// - Parameters:
  ///   - key: the agreed key (not ``IPCKey/private``).
  ///   - count: the number of semaphores.
  ///   - initialValues: the values a new set gets (all 0 when `nil`).
  ///   - mode: permission bits for a new set; the access asked for when opening.
  ///   - timeout: how long to wait for another process's initialisation.
  /// - Throws: ``IPCError/Kind/busy`` when the creator did not finish initialising within
  ///   `timeout` (it may have died: inspect the set, and remove it if it is abandoned);
  ///   ``IPCError/Kind/invalidArgument`` at once when a set of another `count` exists at `key`.
  public static func openOrCreate(
    key: IPCKey, count: Int, initialValues: [Int]? = nil, mode: IPCPermissions = 0o600,
    timeout: Duration = .seconds(10)
  ) throws(IPCError) -> SemaphoreSet {
    try openOrCreateReportingCreation(
      key: key, count: count, initialValues: initialValues, mode: mode, timeout: timeout
    ).set
  }

  /// ``openOrCreate(key:count:initialValues:mode:timeout:)``, also telling whether this call
  /// created and initialised the set.
  public static func openOrCreateReportingCreation(
    key: IPCKey, count: Int, initialValues: [Int]? = nil, mode: IPCPermissions = 0o600,
    timeout: Duration = .seconds(10)
  ) throws(IPCError) -> (set: SemaphoreSet, created: Bool) {
    guard key != .private else {
      throw .invalid("openOrCreate: IPCKey.private cannot be shared; use a real key")
    }
    if let initialValues, initialValues.count != count {
      throw .invalid("openOrCreate: \(initialValues.count) initial values for a set of \(count)")
    }
    let waitNanoseconds = try timeoutNanoseconds(timeout, "openOrCreate") ?? .max
    for value in initialValues ?? [] { _ = try SemaphoreCall.checkedValue(value, "openOrCreate") }
    do throws(IPCError) {
      let set = try SemaphoreSet(key: key, count: count, flags: .createExclusive, mode: mode)
      do {
        if let initialValues { try set.setValues(initialValues) }
        // One semop that changes nothing but sets sem_otime: the "initialised" mark. Down then
        // up when semaphore 0 is above 0 (up first would pass maxValue there), else up then down.
        let first = (initialValues?.first ?? 0) > 0 ? -1 : 1
        try set.apply([.init(index: 0, delta: first), .init(index: 0, delta: -first)])
      } catch {
        try? set.remove()
        throw error
      }
      return (set, true)
    } catch let error where error.kind == .existential && error.errno == .fileExists {
      // Another process created it: wait for its initialisation.
    }
    let set = try SemaphoreSet(key: key, count: count, mode: mode)
    // A set of another size is not the one asked for: refuse it now rather than wait for an
    // initialisation that was never meant for it.
    guard set.count == count else {
      throw .invalid(
        "openOrCreate on semaphore \(set.id): it exists with \(set.count) semaphores, not the "
          + "\(count) asked for\(count == 1 ? " (open it as a SemaphoreSet)" : "")")
    }
    let deadline = Deadline(afterNanoseconds: waitNanoseconds)
    var step: Int64 = 100_000
    while try IPCObjectKind.semaphore.semaphoreStatus(id: set.id).otime == 0 {
      let remaining = deadline.remainingNanoseconds
      if remaining == 0 {
        throw IPCError(
          .busy, "openOrCreate on semaphore \(set.id): not initialised by its creator in time")
      }
      sleepNanoseconds(min(step, remaining))
      step = min(step * 2, 10_000_000)
    }
    return (set, false)
  }
}

extension Semaphore {
  /// Opens the semaphore at `key`, or creates and initialises it, race-free: of many processes
  /// calling this at once, exactly one sets `initialValue`, and every caller returns only once
  /// it is set. The reference's "Semaphore Initialization" recipe, built in: `semget` with
  /// `IPC_CREAT | IPC_EXCL`, `SETVAL` and one `semop` by the creator; the others wait for
  /// `sem_otime`.
  ///
  /// - Throws: ``IPCError/Kind/busy`` when the creator did not finish within `timeout`;
  ///   ``IPCError/Kind/invalidArgument`` at once when a set of more than one semaphore exists at
  ///   `key` (open it with ``SemaphoreSet/openOrCreate(key:count:initialValues:mode:timeout:)``).
  public static func openOrCreate(
    key: IPCKey, initialValue: Int = 0, mode: IPCPermissions = 0o600,
    timeout: Duration = .seconds(10)
  ) throws(IPCError) -> Semaphore {
    try openOrCreateReportingCreation(
      key: key, initialValue: initialValue, mode: mode, timeout: timeout
    ).semaphore
  }

  /// ``openOrCreate(key:initialValue:mode:timeout:)``, also telling whether this call created
  /// and initialised the semaphore.
  public static func openOrCreateReportingCreation(
    key: IPCKey, initialValue: Int = 0, mode: IPCPermissions = 0o600,
    timeout: Duration = .seconds(10)
  ) throws(IPCError) -> (semaphore: Semaphore, created: Bool) {
    let (set, created) = try SemaphoreSet.openOrCreateReportingCreation(
      key: key, count: 1, initialValues: [initialValue], mode: mode, timeout: timeout)
    guard set.count == 1 else {
      throw .invalid("openOrCreate: semaphore \(set.id) is a set of \(set.count)")
    }
    return (try Semaphore(id: set.id), created)
  }
}
