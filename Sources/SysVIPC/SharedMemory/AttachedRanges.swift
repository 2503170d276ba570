#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The address ranges that this process's ``SharedMemory`` attachments hold: every `shmat` and
/// `shmdt` of ``SharedMemory`` goes through here, so that ``SharedMemory/AttachFlags/remap``
/// (`SHM_REMAP`, which replaces whatever is mapped at an address) is refused over a mapping
/// that another `SharedMemory` still uses: the kernel would silently swap that object's bytes
/// and its later `shmdt` would unmap the new mapping under the other object's feet.
///
/// The lock is held only around the table's lookups and updates, never across `shmat` or
/// `shmdt`. What keeps a `.remap` check and its `shmat` together is a count instead: ordinary
/// attaches and detaches in flight are counted, and a `.remap` attach first stops new ones,
/// waits until those in flight are done, then checks and maps alone; ordinary ones meanwhile
/// wait for it (yielding), so no other mapping can appear or vanish in between.
enum AttachedRanges {
  private struct State {
    /// Start address → end address (exclusive, page-rounded).
    var table: [UInt: UInt] = [:]
    /// Ordinary `shmat`s and `shmdt`s between their two critical sections.
    var inFlight = 0
    /// A `.remap` attach is waiting or mapping: no ordinary one may start.
    var remapping = false
  }
  private static let state = TableLock()

  /// The table under the package's pthread mutex (``ConditionLock``, as the wait pool's and the
  /// fault plans'), held only for a few table operations, never across a system call. Not
  /// `Mutex`: on Linux it waits on a futex that ThreadSanitizer does not see, and every access
  /// it guards was reported as a race (187 false reports failed `Scripts/sanitize.sh thread`).
  private final class TableLock: @unchecked Sendable {
    private let lock = ConditionLock()
    // Only read or written under `lock`.
    private var value = State()

    func withLock<R>(_ body: (inout State) -> R) -> R { lock.withLock { body(&value) } }
  }

  /// Runs `body` under the lock as soon as `ready` holds there, yielding in between (only while
  /// a `.remap` attach is under way, or waits for those in flight).
  private static func when<R>(
    _ ready: (State) -> Bool, _ body: (inout State) -> R
  ) -> R {
    while true {
      let result: R? = state.withLock { state in ready(state) ? body(&state) : nil }
      if let result { return result }
      system_yield()
    }
  }

  /// The range a mapping of `size` bytes at `address` covers (`SHM_RND` rounds the address
  /// down to `SHMLBA`, the page size on Linux).
  static func range(at address: UInt, size: Int, rounding: Bool) -> Range<UInt> {
    let page = UInt(SharedMemory.pageSize)
    let start = rounding ? address & ~(page - 1) : address
    let length = (UInt(max(size, 1)) + page - 1) & ~(page - 1)
    let (end, overflow) = start.addingReportingOverflow(length)
    return start..<(overflow ? .max : end)
  }

  /// The attachment, other than the one at `except`, whose range overlaps `range`.
  private static func holder(of range: Range<UInt>, except: UInt, in ranges: [UInt: UInt])
    -> UInt?
  {
    ranges.first { start, end in
      start != except && start < range.upperBound && range.lowerBound < end
    }?
    .key
  }

  /// Refuses `SHM_REMAP` over a range another attachment holds (`except`: the caller's own
  /// mapping, which it replaces).
  static func checkRemap(_ range: Range<UInt>, except: UInt, id: Int32) throws(IPCError) {
    if let holder = state.withLock({ holder(of: range, except: except, in: $0.table) }) {
      throw refusal(range, holder, id: id)
    }
  }

  /// `shmat`, recording the new mapping; `shmat`'s result (-1 with errno on failure).
  static func map(id: Int32, address: UnsafeRawPointer?, flags: SharedMemory.AttachFlags, size: Int)
    -> Int
  {
    #if os(Linux)
      let remap = flags.contains(.remap)
    #else
      let remap = false
    #endif
    let record = { (result: Int, state: inout State) in
      if result != -1 {
        let start = UInt(bitPattern: result)
        state.table[start] = range(at: start, size: size, rounding: false).upperBound
      }
    }
    guard remap, let address else {
      when({ !$0.remapping }) { $0.inFlight += 1 }
      let result = system_shmat(id, address, flags.rawValue)
      state.withLock { state in
        state.inFlight -= 1
        record(result, &state)
      }
      return result
    }
    // Stop new ordinary attaches and detaches, wait for those in flight, then check and map
    // alone: nothing can appear in or leave the range between the check and the shmat.
    when({ !$0.remapping }) { $0.remapping = true }
    let free = when({ $0.inFlight == 0 }) { state in
      let range = range(
        at: UInt(bitPattern: address), size: size, rounding: flags.contains(.roundAddress))
      return holder(of: range, except: 0, in: state.table) == nil
    }
    guard free else {
      state.withLock { $0.remapping = false }
      errno = refusedRemap
      return -1
    }
    let result = system_shmat(id, address, flags.rawValue)
    state.withLock { state in
      state.remapping = false
      record(result, &state)
    }
    return result
  }

  /// `shmdt`, forgetting the mapping first (so that no attach that gets the address back can
  /// lose its entry); `shmdt`'s result.
  static func unmap(_ address: UInt) -> Int32 {
    when({ !$0.remapping }) { state in
      state.table[address] = nil
      state.inFlight += 1
    }
    let result = system_shmdt(address)
    state.withLock { $0.inFlight -= 1 }
    return result
  }

  /// The errno of ``map(id:address:flags:size:)`` when it refuses a `.remap` over another
  /// attachment (`SHM_REMAP` itself never gives `EBUSY`).
  static let refusedRemap = EBUSY

  /// The refusal when another attachment holds part of the range of a `.remap` at `address`.
  static func refusal(at address: UnsafeRawPointer, id: Int32) -> IPCError {
    IPCError(
      .invalidArgument,
      "shmat on shared memory \(id): .remap (SHM_REMAP) at "
        + "0x\(String(UInt(bitPattern: address), radix: 16)) would replace the mapping of another "
        + "SharedMemory of this process; detach it first")
  }

  private static func refusal(_ range: Range<UInt>, _ holder: UInt, id: Int32) -> IPCError {
    IPCError(
      .invalidArgument,
      "shmat on shared memory \(id): .remap (SHM_REMAP) at 0x\(String(range.lowerBound, radix: 16)) "
        + "would replace the mapping of another SharedMemory attached at "
        + "0x\(String(holder, radix: 16)); detach it first")
  }
}
