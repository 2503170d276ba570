import SystemPackage

/// Open-or-create for a segment of a known size, race-free.
///
/// Plain ``IPCFlags/create`` has two traps with shared memory (the reference's "Shared Memory
/// Initialization"): a new segment needs a size, and an existing one can only safely be opened
/// with size 0 unless its size is known. With the size known, the kernel resolves the race
/// itself: of processes creating at the same key, exactly one `shmget` creates the segment and
/// the others open it. Nor is there an initialisation race: Linux fills a new segment with zero
/// bytes as part of creating it, so no process can ever see it half-initialised. (Contents
/// other than zeros need their own protocol: guard them with ``Semaphore/openOrCreate(key:initialValue:mode:timeout:)``.)
extension SharedMemory {
  /// Opens the segment at `key`, or creates it, zero-filled, with `size` bytes: race-free.
  /// Attached like ``init(key:flags:mode:size:initCharacter:)``.
  ///
  /// - Throws: ``IPCError/Kind/invalidArgument`` when a segment of another size exists at
  ///   `key`, for ``IPCKey/private``, or for a size < 1; and the errors of the initializer.
  public static func openOrCreate(key: IPCKey, size: Int, mode: IPCPermissions = 0o600)
    throws(IPCError) -> SharedMemory
  {
    try openOrCreateReportingCreation(key: key, size: size, mode: mode).memory
  }

  /// ``openOrCreate(key:size:mode:)``, also telling whether this call created the segment.
  public static func openOrCreateReportingCreation(
    key: IPCKey, size: Int, mode: IPCPermissions = 0o600
  ) throws(IPCError) -> (memory: SharedMemory, created: Bool) {
    guard key != .private else {
      throw .invalid("openOrCreate: IPCKey.private cannot be shared; use a real key")
    }
    guard size >= 1 else { throw .invalid("openOrCreate: size \(size) must be at least 1") }
    // The segment may vanish between a refused create and the open: go round again.
    for _ in 0..<128 {
      do throws(IPCError) {
        let memory = try SharedMemory(
          key: key, flags: .createExclusive, mode: mode, size: size, initCharacter: 0)
        return (memory, true)
      } catch  where error.errno == .fileExists {
        // Someone else created it: open it below.
      }
      do throws(IPCError) {
        let memory = try SharedMemory(key: key, mode: mode, size: 0)
        guard memory.size == size else {
          throw IPCError.invalid(
            "openOrCreate on shared memory \(memory.id): it exists with \(memory.size) bytes, "
              + "not the \(size) asked for")
        }
        return (memory, false)
      } catch  where error.errno == .noSuchFileOrDirectory {
        continue
      }
    }
    throw IPCError(
      .internal, "openOrCreate at key \(key): the segment kept appearing and vanishing")
  }
}
