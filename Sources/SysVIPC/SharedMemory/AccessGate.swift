import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The gate between the accesses to a segment's mapping (read, write, the zero-copy views) and
/// the calls that change the mapping (attach, detach, deinit): one per ``SharedMemory``.
///
/// Invariants:
/// 1. `word` holds the number of accesses counted in (``countMask``) and three flags:
///    ``blocked`` (set while detached and while a change of the mapping is under way),
///    ``detached`` (with ``blocked``: nothing is mapped; ``blocked`` alone means *changing*) and
///    ``readOnly`` (the mapping is read-only). An access counts itself in with one atomic add
///    and out with one atomic subtract; it takes no lock.
/// 2. An access is *admitted* when its add found ``blocked`` clear (and ``readOnly`` clear, for a
///    mutable access); only an admitted access reads `mapped` and uses the mapping, and only
///    until it counts itself out.
/// 3. `mapped` and the flags change only in ``beginChange(_:id:)`` ... ``endChange(_:)``, which
///    run under `lock` (one change at a time) and only after the count was seen at 0 with
///    ``blocked`` set. Every add after that one sees ``blocked`` (a single atomic's changes have
///    one order), so no admitted access remains: the old mapping may go (`shmdt`).
/// 4. An access that finds a change under way counts itself out, waits for the change to end,
///    then tries again: re-attaching never makes an access fail. It fails with
///    ``IPCError/Kind/notAttached`` only while ``detached``, which only ``detach()`` (or a failed
///    re-attach at a fixed address) leaves set.
/// 5. A change waits for admitted accesses for a bounded time only (they may be bodies that
///    run long, or that call attach themselves): past it, the change is refused with
///    ``IPCError/Kind/busy`` and nothing changed.
struct AccessGate: ~Copyable, Sendable {
  /// The attachment as attach and detach see it, under `lock`.
  struct Attachment {
    /// The mapping's address; 0 when detached.
    var address: UInt = 0
    var readOnly = false
  }

  /// Set while detached or while a change is under way: the one bit a read tests.
  static let blocked = 1 << 62
  /// With ``blocked``: detached. ``blocked`` alone: changing.
  static let detached = 1 << 61
  static let readOnly = 1 << 60
  static let countMask = (1 << 60) - 1
  /// The flags while detached.
  static let closed = blocked | detached

  /// The count and the flags (invariant 1).
  private let word = Atomic<Int>(closed)
  /// The mapping's address, for admitted accesses (invariant 2).
  private let mapped = Atomic<UInt>(0)
  /// Serialises the changes; holds the attachment.
  private let lock = Mutex(Attachment())

  // MARK: Accesses

  /// What ``enter(mutable:)`` found.
  enum Entry {
    /// Counted in: the mapping's address.
    case admitted(UInt)
    /// Refused (and counted out): detached.
    case notAttached
    /// Refused (and counted out): a mutable access to a read-only mapping.
    case readOnly
  }

  /// Counts an access in; pair ``Entry/admitted(_:)`` with ``leave()``. The common case is one
  /// atomic add and one load, and (inlined) no test beyond the add's.
  @inline(__always)
  func enter(mutable: Bool) -> Entry {
    let refused = Self.blocked | (mutable ? Self.readOnly : 0)
    let old = word.wrappingAdd(1, ordering: .acquiring).oldValue
    if _fastPath(old & refused == 0) { return .admitted(mapped.load(ordering: .relaxed)) }
    return enterAfterRefusal(old, refused: refused)
  }

  /// The rest of ``enter(mutable:)`` after its add found `old`: count out, and wait out a change
  /// and try again, or give up.
  @inline(never)
  private func enterAfterRefusal(_ old: Int, refused: Int) -> Entry {
    var old = old
    while true {
      word.wrappingSubtract(1, ordering: .releasing)
      if !Self.isChanging(old) { return old & Self.detached != 0 ? .notAttached : .readOnly }
      waitForChange()
      old = word.wrappingAdd(1, ordering: .acquiring).oldValue
      if old & refused == 0 { return .admitted(mapped.load(ordering: .relaxed)) }
    }
  }

  /// Counts an access out.
  @inline(__always)
  func leave() {
    word.wrappingSubtract(1, ordering: .releasing)
  }

  /// Whether `word` says a change is under way (``blocked`` without ``detached``).
  @inline(__always)
  private static func isChanging(_ word: Int) -> Bool { word & closed == blocked }

  /// Waits while a change is under way (a few atomic operations, or one `shmdt` and one
  /// `shmat` for an attach at a fixed address).
  @inline(never)
  private func waitForChange() {
    var spins = 0
    while Self.isChanging(word.load(ordering: .acquiring)) {
      spins += 1
      if spins > 64 { system_yield() }
    }
  }

  // MARK: Changes

  /// The attachment now (under the lock: not for hot paths).
  var current: Attachment { lock.withLock { $0 } }

  /// Runs `body` under the lock, one change at a time.
  func withAttachment<R>(_ body: (inout Attachment) throws(IPCError) -> R) throws(IPCError) -> R {
    try lock.withLock { (state) throws(IPCError) -> R in try body(&state) }
  }

  /// Sets ``blocked`` and waits until no admitted access remains (invariant 3); throws
  /// ``IPCError/Kind/busy`` (and changes nothing) when they do not all leave in time
  /// (invariant 5). Call under ``withAttachment(_:)``.
  func beginChange(_ call: StaticString, id: Int32) throws(IPCError) {
    let before = word.bitwiseOr(Self.blocked, ordering: .acquiringAndReleasing).oldValue
    if before & Self.detached != 0 { return }  // detached: nothing admitted, nothing mapped
    var spins = 0
    while true {
      let count = word.load(ordering: .acquiring) & Self.countMask
      if count == 0 { return }
      spins += 1
      if spins > 2000 {
        // Accesses still run (a long body, or this thread's own): leave the mapping as it was.
        word.bitwiseAnd(~Self.blocked, ordering: .releasing)
        throw IPCError.busy(call, id: id, count)
      }
      if spins > 64 { system_yield() }
    }
  }

  /// Publishes `state` as the mapping (or detached, for address 0) and ends the change.
  func endChange(_ state: Attachment) {
    mapped.store(state.address, ordering: .relaxed)
    let flags =
      state.address == 0 ? Self.closed : (state.readOnly ? Self.readOnly : 0)
    // Replace the three flags, keeping the count (accesses backing out may be counted in it).
    var current = word.load(ordering: .relaxed)
    while true {
      let desired = (current & Self.countMask) | flags
      let (exchanged, original) = word.compareExchange(
        expected: current, desired: desired, ordering: .releasing)
      if exchanged { return }
      current = original
    }
  }
}
