import CSysVIPCChannel
import Synchronization
import SysVIPC
import SystemPackage

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A message channel in shared memory: many producers, one consumer, messages of up to
/// ``maxMessageSize`` bytes with an `Int` type, in order per producer, with no system call on
/// the fast path.
///
/// A channel is two System V objects with the same key and mode: a shared memory segment
/// holding a header and a ring of ``capacity`` slots, and a set of four semaphores that sleeping
/// sides wait on and that count the live producers and consumers (with `SEM_UNDO`, so the kernel
/// counts a process out when it dies). `sysvipc list` shows both; ``remove()`` removes both.
/// See <doc:ChoosingAChannel> for when to use one instead of a `MessageQueue`, and
/// <doc:ChannelLayout> for the layout that other programs (the C header
/// `sysvipc_channel.h`) speak.
///
/// Any number of processes and threads may send. One handle at a time receives: the first
/// receive registers the handle as the channel's consumer; a receive on another handle, in this
/// process or another, throws `IPCError.Kind.busy` while that consumer lives. Handles
/// must not be used across `fork()`.
///
/// A channel created with `singleProducer: true` takes one producer handle at a time, registered
/// as the consumer is (a send on another handle throws `IPCError.Kind.busy` while it lives, and
/// one send at a time on that handle): its sends claim and publish slots with plain stores
/// instead of compare-and-swaps, the fastest hand-over between two processes (see
/// <doc:ChoosingAChannel>).
public final class MessageChannel: @unchecked Sendable {
  /// The key both objects have (`IPCKey.private` for a private channel).
  public let key: IPCKey
  /// The shared memory segment's id: what ``open(id:timeout:)`` takes.
  public var id: Int32 { memory.id }
  /// The semaphore set's id.
  public var semaphoreSetID: Int32 { semaphores.id }
  /// How many messages the ring holds.
  public var capacity: Int { ring.geometry.capacity }
  /// The largest message in bytes.
  public var maxMessageSize: Int { ring.geometry.maxMessageSize }
  /// Whether the channel takes one producer handle at a time (`singleProducer` at creation).
  public let isSingleProducer: Bool

  /// When true, a blocking receive on an empty channel whose producers have all gone (at least
  /// one producer sent, and every one that did has exited or closed its handle) throws
  /// `IPCError.isProducersGone` instead of waiting; ``messages()`` ends then. Set it
  /// before receiving. Default false: a receive waits for producers that may yet come.
  public var endsWhenProducersGone: Bool {
    get { endsFlag.load(ordering: .relaxed) }
    set { endsFlag.store(newValue, ordering: .relaxed) }
  }

  let memory: SharedMemory
  let semaphores: SemaphoreSet
  let ring: ChannelRing
  /// This process's id, the writer code of its claims (cached: getpid is a system call).
  let pid: UInt32
  /// Spinning is useless on a machine with one CPU. (Where the other side runs on this one CPU,
  /// as with both pinned to it, the adaptive spin turns itself off.)
  let spins: Bool

  private let endsFlag = Atomic<Bool>(false)
  private let producerRegistered = Atomic<Bool>(false)
  private let consumerRegistered = Atomic<Bool>(false)
  private let receiving = Atomic<Bool>(false)
  /// A single-producer handle's one send in progress, from claim to commit or abandon.
  private let sending = Atomic<Bool>(false)
  private let producerSpin = Atomic<Int64>(Spin.initial)
  /// A single-producer handle's next position, touched only by the one send in progress (the
  /// `sending` flag), behind a pointer as the consumer's state is.
  private let producerTail: UnsafeMutablePointer<UInt64>
  /// The consumer's state, touched only by the one receive in progress (the `receiving` flag),
  /// behind a pointer: a stored `var` of a class would cost an exclusivity check per access.
  private let consumer: UnsafeMutablePointer<ConsumerState>

  private init(memory: SharedMemory, semaphores: SemaphoreSet, header: ChannelHeader) {
    self.memory = memory
    self.semaphores = semaphores
    self.key = memory.key
    self.ring = ChannelRing(
      base: UnsafeMutableRawPointer(mutating: memory.address!), geometry: header.geometry)
    self.pid = UInt32(truncatingIfNeeded: getpid())
    self.spins = csvc_cpus_online() > 1
    self.consumer = .allocate(capacity: 1)
    self.consumer.initialize(to: ConsumerState())
    self.isSingleProducer = header.isSingleProducer
    self.producerTail = .allocate(capacity: 1)
    self.producerTail.initialize(to: 0)
  }

  deinit {
    defer {
      consumer.deallocate()
      producerTail.deallocate()
    }
    // Count this handle out; SEM_UNDO on the -1 cancels the +1's adjustment.
    let flags = csvc_sem_undo | csvc_ipc_nowait
    if producerRegistered.load(ordering: .relaxed) {
      _ = try? packageSemaphoreOperation(
        id: semaphores.id, index: ChannelLayout.producersSemaphore, delta: -1, flags: flags,
        timeoutNanoseconds: nil)
    }
    if consumerRegistered.load(ordering: .relaxed) {
      _ = try? packageSemaphoreOperation(
        id: semaphores.id, index: ChannelLayout.consumerSemaphore, delta: -1, flags: flags,
        timeoutNanoseconds: nil)
    }
  }

  // MARK: Creating and opening

  /// Creates a channel: a segment for `capacity` messages of up to `maxMessageSize` bytes and
  /// its semaphore set, both exclusively (`IPC_CREAT | IPC_EXCL`) with `mode`.
  ///
  /// - Parameters:
  ///   - key: the key of both objects; `nil` picks a random unused key; `IPCKey.private`
  ///     makes a channel that only ``open(id:timeout:)`` finds.
  ///   - capacity: slots in the ring, 1...2^24 (a full ring makes senders wait).
  ///   - maxMessageSize: the largest message, 1...2^30 bytes; it may exceed `msgmax`. Each slot
  ///     takes `maxMessageSize` + 24 bytes rounded up to 64.
  ///   - mode: the permissions of both objects.
  ///   - singleProducer: one producer handle at a time (``isSingleProducer``): the fastest
  ///     sends; a second producer handle gets `IPCError.Kind.busy` while the first lives.
  /// - Throws: `IPCError.Kind.existential` when a segment or semaphore set exists at
  ///   `key`, `IPCError.Kind.invalidArgument` for an impossible geometry, and the
  ///   errors of `shmget`/`semget`. Nothing is left behind when it throws.
  public static func create(
    key: IPCKey?, capacity: Int, maxMessageSize: Int, mode: IPCPermissions = 0o600,
    singleProducer: Bool = false
  ) throws(IPCError) -> MessageChannel {
    try checkWritable(mode, "create")
    let geometry = try checked(
      ChannelGeometry.make(capacity: capacity, maxMessageSize: maxMessageSize))
    for _ in 0..<16 {
      let memory = try SharedMemory(
        key: key, flags: .createExclusive, mode: mode, size: geometry.segmentSize,
        initCharacter: 0)
      do throws(IPCError) {
        return try initialise(memory, geometry, mode: mode, singleProducer: singleProducer)
      } catch  where key == nil && error.errno == .fileExists {
        try? memory.remove()  // a semaphore set has the random key: pick another
      } catch {
        try? memory.remove()
        throw error
      }
    }
    throw IPCError(.existential, "MessageChannel.create: no unused random key found")
  }

  /// Opens the channel at `key`, or creates it, race-free: of processes calling this at once,
  /// exactly one creates and initialises the channel (the kernel decides, with
  /// `SharedMemory.openOrCreateReportingCreation(key:size:mode:)`), and every caller
  /// returns a channel whose header is complete.
  ///
  /// - Throws: `IPCError.Kind.invalidArgument` when a channel of another geometry, or not
  ///   `singleProducer` as asked (or something else), exists at `key`;
  ///   `IPCError.Kind.busy` when its creator did not finish within `timeout` (it may have
  ///   died: remove the objects).
  public static func openOrCreate(
    key: IPCKey, capacity: Int, maxMessageSize: Int, mode: IPCPermissions = 0o600,
    singleProducer: Bool = false, timeout: Duration = .seconds(10)
  ) throws(IPCError) -> MessageChannel {
    try openOrCreateReportingCreation(
      key: key, capacity: capacity, maxMessageSize: maxMessageSize, mode: mode,
      singleProducer: singleProducer, timeout: timeout
    ).channel
  }

  /// ``openOrCreate(key:capacity:maxMessageSize:mode:singleProducer:timeout:)``, also telling
  /// whether this call created the channel.
  public static func openOrCreateReportingCreation(
    key: IPCKey, capacity: Int, maxMessageSize: Int, mode: IPCPermissions = 0o600,
    singleProducer: Bool = false, timeout: Duration = .seconds(10)
  ) throws(IPCError) -> (channel: MessageChannel, created: Bool) {
    try checkWritable(mode, "openOrCreate")
    let geometry = try checked(
      ChannelGeometry.make(capacity: capacity, maxMessageSize: maxMessageSize))
    let (memory, created) = try SharedMemory.openOrCreateReportingCreation(
      key: key, size: geometry.segmentSize, mode: mode)
    if created {
      do throws(IPCError) {
        return (
          try initialise(memory, geometry, mode: mode, singleProducer: singleProducer), true
        )
      } catch {
        try? memory.remove()
        throw error
      }
    }
    let channel = try attach(memory, timeout: timeout)
    guard channel.ring.geometry == geometry else {
      throw .init(
        .invalidArgument,
        "MessageChannel.openOrCreate at key \(key): it exists with capacity \(channel.capacity) and maxMessageSize \(channel.maxMessageSize)"
      )
    }
    guard channel.isSingleProducer == singleProducer else {
      throw .init(
        .invalidArgument,
        "MessageChannel.openOrCreate at key \(key): it exists \(channel.isSingleProducer ? "with" : "without") singleProducer"
      )
    }
    return (channel, false)
  }

  /// Opens the existing channel at `key`, waiting up to `timeout` for its creator to finish the
  /// header.
  ///
  /// - Throws: `IPCError.Kind.existential` when there is no segment at `key`,
  ///   `IPCError.Kind.invalidArgument` naming what was found when the segment is not
  ///   a channel of this layout version, or (errno `EXDEV`) when this process is in another
  ///   PID namespace than the channel's creator, `IPCError.Kind.permissions` without access.
  public static func open(key: IPCKey, timeout: Duration = .seconds(10)) throws(IPCError)
    -> MessageChannel
  {
    guard key != .private else {
      throw .init(
        .invalidArgument, "MessageChannel.open: IPCKey.private names no channel; use open(id:)")
    }
    return try attach(SharedMemory(key: key, size: 0), timeout: timeout)
  }

  /// Opens the channel whose segment has id `id` (``id``).
  ///
  /// - Throws: as ``open(key:timeout:)``.
  public static func open(id: Int32, timeout: Duration = .seconds(10)) throws(IPCError)
    -> MessageChannel
  {
    try attach(SharedMemory.attach(id: id), timeout: timeout)
  }

  /// Removes both objects (`IPC_RMID`). Every waiting sender and receiver, in any process, wakes
  /// with `IPCError.Kind.existential`; handles stay attached to the segment until they
  /// go, but every send and receive on them fails with `IPCError.Kind.existential` from now on
  /// (as on a removed queue), also one that would not wait.
  public func remove() throws(IPCError) {
    // First the removed word, so that handles still attached to the segment after IPC_RMID
    // refuse to send into it (the message would be lost) or receive from it.
    csvc_store32_seqcst(ring.removedWord, 1)
    var failure: IPCError?
    do { try semaphores.remove() } catch { failure = error }
    do { try memory.remove() } catch { failure = failure ?? error }
    if let failure { throw failure }
  }

  /// The number of live producers: handles that sent at least once and whose process has not
  /// exited (`SEM_UNDO` counts a dead process out).
  public var producersAlive: Int {
    get throws(IPCError) { try semaphores.value(at: Int(ChannelLayout.producersSemaphore)) }
  }

  /// Every side of a channel writes into its segment: a mode without the owner's write bit
  /// (0o200) would attach the creator read-only (`SHM_RDONLY`), so it is refused before anything
  /// is created.
  private static func checkWritable(_ mode: IPCPermissions, _ what: String) throws(IPCError) {
    guard mode.rawValue & 0o200 != 0 else {
      throw IPCError(
        .invalidArgument,
        "MessageChannel.\(what): mode 0o\(String(mode.rawValue, radix: 8)) lacks the owner's write permission (0o200); every side of a channel writes into it"
      )
    }
  }

  private static func checked<T>(_ result: Result<T, ChannelFault>) throws(IPCError) -> T {
    switch result {
    case .success(let value): return value
    case .failure(let fault): throw fault.error("MessageChannel")
    }
  }

  /// The creator's part: the semaphore set, then the header, magic last.
  private static func initialise(
    _ memory: SharedMemory, _ geometry: ChannelGeometry, mode: IPCPermissions,
    singleProducer: Bool
  ) throws(IPCError) -> MessageChannel {
    let semaphores = try SemaphoreSet(
      key: memory.key, count: ChannelLayout.semaphoreCount, flags: .createExclusive, mode: mode)
    guard let address = memory.address else {
      try? semaphores.remove()
      throw IPCError(.notAttached, "MessageChannel: segment \(memory.id) is not attached")
    }
    let namespace = csvc_pid_namespace()
    let flags = singleProducer ? ChannelLayout.singleProducerFlag : 0
    ChannelHeader.write(
      geometry, semaphoreSetID: semaphores.id, pidNamespace: namespace, flags: flags,
      to: UnsafeMutableRawPointer(mutating: address))
    return MessageChannel(
      memory: memory, semaphores: semaphores,
      header: ChannelHeader(
        geometry: geometry, semaphoreSetID: semaphores.id, pidNamespace: namespace, flags: flags))
  }

  /// The opener's part: wait for the magic, check the header, open the set it names.
  static func attach(_ memory: SharedMemory, timeout: Duration) throws(IPCError)
    -> MessageChannel
  {
    guard let address = memory.address else {
      throw IPCError(.notAttached, "MessageChannel: segment \(memory.id) is not attached")
    }
    // Senders and the receiver both write into the segment: without write access there is no
    // channel to use (and a store into a read-only attachment would crash).
    guard !memory.isReadOnly else {
      throw IPCError(
        .permissions,
        "MessageChannel: segment \(memory.id) is attached read-only (no write permission); a channel needs write access"
      )
    }
    let deadline = csvc_now_ns() &+ nanoseconds(timeout)
    var pause: Int64 = 100_000
    var header: ChannelHeader
    while true {
      switch ChannelHeader.read(from: address, segmentSize: memory.size) {
      case .success(let read): header = read
      case .failure(.uninitialised):
        if csvc_now_ns() >= deadline {
          throw IPCError(
            .busy,
            "MessageChannel: segment \(memory.id) has no channel header yet (creator still initialising, or dead)"
          )
        }
        var wait = timespec(tv_sec: 0, tv_nsec: Int(pause))
        nanosleep(&wait, nil)
        pause = min(pause * 2, 10_000_000)
        continue
      case .failure(let fault): throw fault.error("MessageChannel: segment \(memory.id)")
      }
      break
    }
    // The consumer tells a dead writer by its pid (kill(pid, 0)): that only works when every
    // process that uses the channel sees the same pids. A channel created before the namespace
    // was recorded (0), or a process that cannot read its own (0), is not checked.
    let mine = csvc_pid_namespace()
    if header.pidNamespace != 0, mine != 0, header.pidNamespace != mine {
      throw IPCError(
        .invalidArgument,
        "MessageChannel: segment \(memory.id) was created in PID namespace pid:[\(header.pidNamespace)], this process is in pid:[\(mine)]; a channel's consumer tells dead producers by their pids, so every process that uses it must share the creator's PID namespace",
        errno: .improperLink)
    }
    // The set's id comes from the segment: untrusted. It must be the channel's own set: 4
    // semaphores, the segment's key, and the segment's creator (the key alone tells nothing for
    // a private channel, whose objects all have key 0).
    let semaphores = try SemaphoreSet(id: header.semaphoreSetID)
    guard semaphores.count == ChannelLayout.semaphoreCount, semaphores.key == memory.key else {
      throw IPCError(
        .invalidArgument,
        "MessageChannel: segment \(memory.id) names semaphore set \(semaphores.id), which has \(semaphores.count) semaphores and key \(semaphores.key), not \(ChannelLayout.semaphoreCount) and \(memory.key)"
      )
    }
    let (segmentCreator, setCreator) = (
      (try memory.cuid, try memory.cgid), (try semaphores.cuid, try semaphores.cgid)
    )
    guard segmentCreator == setCreator else {
      throw IPCError(
        .invalidArgument,
        "MessageChannel: segment \(memory.id) names semaphore set \(semaphores.id), created by uid \(setCreator.0) gid \(setCreator.1); the segment was created by uid \(segmentCreator.0) gid \(segmentCreator.1)"
      )
    }
    return MessageChannel(memory: memory, semaphores: semaphores, header: header)
  }

  // MARK: Sending

  /// Sends the bytes of `message` with `type`, with one copy into the ring and no allocation.
  ///
  /// - Parameters:
  ///   - message: the bytes, at most ``maxMessageSize``.
  ///   - type: the message's type, > 0 (as for `MessageQueue`).
  ///   - block: wait while the ring is full (spinning briefly, then sleeping on the semaphore
  ///     set); false throws `IPCError.Kind.busy` instead.
  ///   - timeout: the longest wait when `block` is true; `nil` waits as long as it takes.
  /// - Throws: `IPCError.Kind.outOfRange` for a message above ``maxMessageSize``,
  ///   `IPCError.Kind.invalidArgument` for a type ≤ 0,
  ///   `IPCError.Kind.busy` when full and not waiting or timed out,
  ///   `IPCError.Kind.existential` when the channel was removed while waiting.
  @inlinable
  public func send(
    _ message: UnsafeRawBufferPointer, type: Int = 1, block: Bool = true,
    timeout: Duration? = nil
  ) throws(IPCError) {
    try reserve(count: message.count, type: type, block: block, timeout: timeout) { buffer in
      if let source = message.baseAddress, let target = buffer.baseAddress {
        target.copyMemory(from: source, byteCount: message.count)
      }
      return message.count
    }
  }

  /// Sends `message`'s bytes (contiguous collections such as `[UInt8]` with no allocation).
  public func send(
    _ message: some Sequence<UInt8>, type: Int = 1, block: Bool = true, timeout: Duration? = nil
  ) throws(IPCError) {
    let sent: Result<Void, IPCError>? = message.withContiguousStorageIfAvailable { buffer in
      do throws(IPCError) {
        return .success(
          try send(UnsafeRawBufferPointer(buffer), type: type, block: block, timeout: timeout))
      } catch { return .failure(error) }
    }
    if let sent { return try sent.get() }
    try send(Array(message), type: type, block: block, timeout: timeout)
  }

  /// Sends `string` as UTF-8.
  public func send(_ string: String, type: Int = 1, block: Bool = true, timeout: Duration? = nil)
    throws(IPCError)
  {
    try send(string.utf8, type: type, block: block, timeout: timeout)
  }

  /// Writes a message in place: reserves a slot (waiting as `send` does), lets `fill` write up
  /// to `count` bytes straight into shared memory, and commits the number of bytes `fill`
  /// returns. No copy, no allocation.
  ///
  /// The consumer never sees the slot before the commit. When `fill` throws, or returns more
  /// than `count`, the slot is abandoned (the consumer skips it) and the error propagates; when
  /// this process dies inside `fill`, the consumer skips the slot too.
  ///
  /// - Parameters:
  ///   - count: the most bytes `fill` may write, ≤ ``maxMessageSize``.
  ///   - type: the message's type, > 0.
  ///   - block: wait while the ring is full; false throws `IPCError.Kind.busy` instead.
  ///   - timeout: the longest wait when `block` is true; `nil` waits as long as it takes.
  ///   - fill: writes the message into the slot's bytes and returns how many it wrote.
  /// - Throws: as `send`, and what `fill` throws.
  @inlinable
  public func reserve(
    count: Int, type: Int = 1, block: Bool = true, timeout: Duration? = nil,
    _ fill: (UnsafeMutableRawBufferPointer) throws(IPCError) -> Int
  ) throws(IPCError) {
    let (position, payload) = try claimForWriting(
      count: count, type: type, block: block, timeout: timeout)
    let written: Int
    do throws(IPCError) {
      written = try fill(UnsafeMutableRawBufferPointer(start: payload, count: count))
    } catch {
      abandon(position)
      throw error
    }
    guard (0...count).contains(written) else {
      abandon(position)
      throw IPCError(
        .outOfRange, "MessageChannel.reserve: fill reported \(written) bytes of \(count)")
    }
    try commit(position, type: type, count: written)
  }

  @usableFromInline func payload(_ position: UInt64) -> UnsafeMutableRawPointer {
    ring.payload(at: position)
  }
  @usableFromInline func abandon(_ position: UInt64) {
    // The single producer's slot stays free: its next claim takes it again.
    if isSingleProducer {
      sending.store(false, ordering: .releasing)
    } else {
      ring.abandon(position)
    }
  }

  /// Publishes a filled slot and wakes the consumer if (and only if) it sleeps.
  @usableFromInline func commit(_ position: UInt64, type: Int, count: Int) throws(IPCError) {
    if isSingleProducer {
      ring.commitExclusive(position, type: type, count: count)
      producerTail.pointee = position &+ 1
      sending.store(false, ordering: .releasing)
    } else if !ring.commit(position, writer: pid, type: type, count: count) {
      throw IPCError(
        .internal,
        "MessageChannel.send: the message was not sent: the consumer reclaimed its slot, taking process \(pid) for dead (is the consumer in another PID namespace?)"
      )
    }
    let sleepers = ChannelRing.takeSleepers(ring.consumerSleepers)
    if sleepers != 0 { post(ChannelLayout.dataSemaphore, sleepers) }
  }

  /// Claims a slot; a wait for space ends early when `stop` (an async wait's ticket) is stopped.
  @inline(__always)
  func claim(count: Int, type: Int, block: Bool, timeout: Duration?, stop: WaitTicket?)
    throws(IPCError) -> UInt64
  {
    guard type > 0, count >= 0, count <= maxMessageSize else {
      throw badMessage(count: count, type: type)
    }
    guard isSingleProducer else {
      if !producerRegistered.load(ordering: .relaxed) {
        try registerProducer()
      } else if case .claimed(let position) = ring.claim(writer: pid) {
        return position
      }
      return try claimSlot(block: block, timeout: timeout, stop: stop)
    }
    // The single producer's cursor is this handle's: one send at a time, from registration and
    // claim to commit.
    guard sending.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    else {
      throw IPCError(
        .busy, "MessageChannel.send: another send on this single-producer handle is in progress")
    }
    do throws(IPCError) {
      if !producerRegistered.load(ordering: .relaxed) {
        try registerProducer()
      } else if case .claimed(let position) = ring.claimExclusive(tail: &producerTail.pointee) {
        return position
      }
      return try claimSlot(block: block, timeout: timeout, stop: stop)
    } catch {
      sending.store(false, ordering: .releasing)
      throw error
    }
  }

  private func badMessage(count: Int, type: Int) -> IPCError {
    guard type > 0 else {
      return IPCError(.invalidArgument, "MessageChannel.send: type \(type) must be > 0")
    }
    return IPCError(
      .outOfRange,
      "MessageChannel.send: \(count) bytes is more than maxMessageSize \(maxMessageSize)")
  }

  /// Claims a slot for a message of `count` bytes (as ``claim(count:type:block:timeout:stop:)``
  /// does) and returns its payload too: the one call of an inlined `reserve` into the module.
  @usableFromInline func claimForWriting(count: Int, type: Int, block: Bool, timeout: Duration?)
    throws(IPCError) -> (position: UInt64, payload: UnsafeMutableRawPointer)
  {
    let position = try claim(count: count, type: type, block: block, timeout: timeout, stop: nil)
    return (position, ring.payload(at: position))
  }

  private func claimSlot(block: Bool, timeout: Duration?, stop: WaitTicket?) throws(IPCError)
    -> UInt64
  {
    switch tryClaim() {
    case .claimed(let position): return position
    case .fault(let fault): throw fault.error("MessageChannel.send")
    case .full:
      guard block else {
        throw IPCError(.busy, "MessageChannel.send: the channel is full", errno: .wouldBlock)
      }
      return try waitForSpace(timeout: timeout, stop: stop)
    }
  }

  /// One claim attempt: from the single producer's own cursor, or by compare-and-swap.
  @inline(__always)
  private func tryClaim() -> ChannelRing.Claim {
    isSingleProducer ? ring.claimExclusive(tail: &producerTail.pointee) : ring.claim(writer: pid)
  }

  private func waitForSpace(timeout: Duration?, stop: WaitTicket?) throws(IPCError) -> UInt64 {
    let deadline = timeout.map { csvc_now_ns() &+ Self.nanoseconds($0) }
    var state = producerSpin.load(ordering: .relaxed)
    let spun = try spin(&state) { () throws(IPCError) -> UInt64? in
      switch tryClaim() {
      case .claimed(let position): return position
      case .fault(let fault): throw fault.error("MessageChannel.send")
      case .full: return nil
      }
    }
    producerSpin.store(state, ordering: .relaxed)
    if let spun { return spun }
    while true {
      ChannelRing.announce(ring.producerSleepers)
      switch tryClaim() {
      case .claimed(let position):
        ChannelRing.withdraw(ring.producerSleepers)
        return position
      case .fault(let fault):
        ChannelRing.withdraw(ring.producerSleepers)
        throw fault.error("MessageChannel.send")
      case .full: break
      }
      let slice = Self.earlier(deadline, csvc_now_ns() &+ Self.wakerSlice)
      let woken = try sleep(
        on: ChannelLayout.spaceSemaphore, sleepers: ring.producerSleepers, deadline: slice,
        stop: stop)
      if !woken {
        if let deadline, csvc_now_ns() >= deadline {
          throw IPCError(
            .busy, "MessageChannel.send: timed out (the channel stayed full)", errno: .wouldBlock)
        }
      }
    }
  }

  private func registerProducer() throws(IPCError) {
    guard
      producerRegistered.compareExchange(expected: false, desired: true, ordering: .relaxed)
        .exchanged
    else { return }
    do throws(IPCError) {
      if isSingleProducer {
        try registerAlone(
          ChannelLayout.producersSemaphore, "MessageChannel.send",
          "this single-producer channel's producer")
        // Its cursor starts at the recorded tail.
        producerTail.pointee = csvc_load64_acquire(ring.tailWord)
      } else {
        _ = try packageSemaphoreOperation(
          id: semaphores.id, index: ChannelLayout.producersSemaphore, delta: 1,
          flags: csvc_sem_undo, timeoutNanoseconds: nil)
      }
    } catch {
      producerRegistered.store(false, ordering: .relaxed)
      throw error
    }
    _ = csvc_add32(ring.base + ChannelLayout.producersEverOffset, 1)
  }

  // MARK: Receiving

  /// Receives the next message into `buffer` without allocating; the message leaves the ring.
  ///
  /// - Returns: the message's size and type.
  /// - Throws: `IPCError.Kind.outOfRange` when the message is larger than `buffer`
  ///   (it stays in the channel), `IPCError.Kind.busy` when there is none and
  ///   `block` is false or `timeout` passed, or another handle is the consumer,
  ///   `IPCError.Kind.existential` when the channel is removed while waiting,
  ///   `IPCError.Kind.internal` when the segment holds garbage.
  public func receive(
    into buffer: UnsafeMutableRawBufferPointer, block: Bool = true, timeout: Duration? = nil
  ) throws(IPCError) -> (count: Int, type: Int) {
    // withReceived's steps, without its closure: the one copy and the bounds check inline
    // (through an inlined withReceived and a closure, 29 instructions more a message under
    // callgrind).
    try beginReceiving()
    defer { receiving.store(false, ordering: .releasing) }
    let (count, type) = try awaitMessage(block: block, timeout: timeout, stop: nil)
    guard count <= buffer.count else {
      throw IPCError(
        .outOfRange,
        "MessageChannel.receive: the message has \(count) bytes; the buffer \(buffer.count)")
    }
    if count > 0, let target = buffer.baseAddress {
      target.copyMemory(from: ring.payload(at: consumer.pointee.head), byteCount: count)
    }
    finishReceiving()
    return (count, type)
  }

  /// Receives the next message as an array.
  public func receive(block: Bool = true, timeout: Duration? = nil) throws(IPCError) -> (
    message: [UInt8], type: Int
  ) {
    try withReceived(block: block, timeout: timeout) { (message, type) throws(IPCError) in
      (Array(message), type)
    }
  }

  /// Receives the next message in place: `body` reads it straight from shared memory, then the
  /// slot is freed. When `body` throws, the message stays (the next receive gets it again).
  ///
  /// Another process with write access could change the bytes while `body` reads them: copy
  /// what must not change.
  public func withReceived<R>(
    block: Bool = true, timeout: Duration? = nil,
    _ body: (UnsafeRawBufferPointer, _ type: Int) throws(IPCError) -> R
  ) throws(IPCError) -> R {
    try withReceived(block: block, timeout: timeout, stop: nil, body)
  }

  /// ``withReceived(block:timeout:_:)`` whose wait ends early when `stop` (an async wait's
  /// ticket) is stopped.
  func withReceived<R>(
    block: Bool, timeout: Duration?, stop: WaitTicket?,
    _ body: (UnsafeRawBufferPointer, _ type: Int) throws(IPCError) -> R
  ) throws(IPCError) -> R {
    try beginReceiving()
    defer { receiving.store(false, ordering: .releasing) }
    let (count, type) = try awaitMessage(block: block, timeout: timeout, stop: stop)
    let result = try body(
      UnsafeRawBufferPointer(start: ring.payload(at: consumer.pointee.head), count: count), type)
    finishReceiving()
    return result
  }

  /// Frees the head's slot and wakes producers waiting for space, if any sleep.
  @inline(__always)
  private func finishReceiving() {
    ring.release(head: &consumer.pointee.head)
    let sleepers = ChannelRing.takeSleepers(ring.producerSleepers)
    if sleepers != 0 { post(ChannelLayout.spaceSemaphore, sleepers) }
  }

  // The fast paths below are inlined into the receive and send functions, their rare parts
  // (registering, waiting, errors) are not: each call, closure and result enum on the way costs
  // on every message (chan_local under callgrind, BENCHMARKS.md).

  @inline(__always)
  private func beginReceiving() throws(IPCError) {
    guard receiving.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    else {
      throw IPCError(
        .busy, "MessageChannel.receive: another receive on this handle is in progress")
    }
    if consumerRegistered.load(ordering: .relaxed) { return }
    try registerConsumer()
  }

  private func registerConsumer() throws(IPCError) {
    do throws(IPCError) {
      try registerAlone(
        ChannelLayout.consumerSemaphore, "MessageChannel.receive", "this channel's consumer")
    } catch {
      receiving.store(false, ordering: .releasing)
      throw error
    }
    consumerRegistered.store(true, ordering: .relaxed)
    consumer.pointee.head = ring.startingHead()
  }

  /// Registers this handle as the only one in `role`: atomically, semaphore `index` is 0 and
  /// becomes 1 (undone when this process dies); `.busy` naming the role while another handle
  /// holds it. The consumer's registration, and a single producer's.
  private func registerAlone(_ index: UInt16, _ operation: String, _ role: String)
    throws(IPCError)
  {
    do throws(IPCError) {
      try semaphores.apply([
        .init(index: Int(index), delta: 0, nonBlocking: true),
        .init(index: Int(index), delta: 1, undo: true),
      ])
    } catch  where error.kind == .busy {
      throw IPCError(.busy, "\(operation): another handle is \(role)")
    }
  }

  /// Waits for a message at the head: spins (adaptively), then sleeps on the semaphore set.
  @inline(__always)
  private func awaitMessage(block: Bool, timeout: Duration?, stop: WaitTicket?) throws(IPCError)
    -> (Int, Int)
  {
    switch ring.poll(head: &consumer.pointee.head) {
    case .message(let count, let type): return (count, type)
    case .fault(let fault): throw fault.error("MessageChannel.receive")
    case .empty, .writing:
      guard block else {
        throw IPCError(.busy, "MessageChannel.receive: no message", errno: .wouldBlock)
      }
      return try waitForMessage(timeout: timeout, stop: stop)
    }
  }

  /// The rest of ``awaitMessage(block:timeout:stop:)``, after the head held nothing.
  private func waitForMessage(timeout: Duration?, stop: WaitTicket?) throws(IPCError) -> (
    Int, Int
  ) {
    let deadline = timeout.map { csvc_now_ns() &+ Self.nanoseconds($0) }
    var state = consumer.pointee.spin
    let spun = spin(&state) { () -> (Int, Int)? in
      guard case .message(let count, let type) = ring.poll(head: &consumer.pointee.head) else {
        return nil
      }
      return (count, type)
    }
    consumer.pointee.spin = state
    if let spun { return spun }
    while true {
      ChannelRing.announce(ring.consumerSleepers)
      var slice = Self.earlier(deadline, csvc_now_ns() &+ Self.wakerSlice)
      switch ring.poll(head: &consumer.pointee.head) {
      case .message(let count, let type):
        ChannelRing.withdraw(ring.consumerSleepers)
        return (count, type)
      case .fault(let fault):
        ChannelRing.withdraw(ring.consumerSleepers)
        throw fault.error("MessageChannel.receive")
      case .writing(let writer):
        if csvc_process_exists(Int32(bitPattern: writer)) == 0 {
          // Its writer died before committing: skip the slot (nothing of it is delivered).
          _ = ring.reclaim(head: &consumer.pointee.head, writer: writer)
          ChannelRing.withdraw(ring.consumerSleepers)
          continue
        }
        slice = Self.earlier(deadline, csvc_now_ns() &+ Self.livenessSlice)
      case .empty:
        if endsWhenProducersGone {
          if try producersGone() {
            ChannelRing.withdraw(ring.consumerSleepers)
            throw IPCError(
              .system, "MessageChannel.receive: every producer has gone", errno: .brokenPipe)
          }
          slice = Self.earlier(deadline, csvc_now_ns() &+ Self.livenessSlice)
        }
      }
      let woken = try sleep(
        on: ChannelLayout.dataSemaphore, sleepers: ring.consumerSleepers, deadline: slice,
        stop: stop)
      if !woken {
        if let deadline, csvc_now_ns() >= deadline {
          throw IPCError(.busy, "MessageChannel.receive: timed out", errno: .wouldBlock)
        }
      }
    }
  }

  private func producersGone() throws(IPCError) -> Bool {
    let ever = csvc_load32_seqcst(ring.base + ChannelLayout.producersEverOffset)
    guard ever > 0 else { return false }
    return try producersAlive == 0
  }

  // MARK: Sleeping and waking

  /// The adaptive spin of both sides (``Spin``): calls `attempt` between `pause`s until it gives
  /// a result or the budget of `state` is spent, then moves `state` on by whether it found one.
  /// Nothing at all on a machine with one CPU.
  @inline(__always)
  private func spin<R, E: Error>(_ state: inout Int64, _ attempt: () throws(E) -> R?) throws(E)
    -> R?
  {
    guard spins else { return nil }
    let budget = Spin.budget(state)
    var found: R?
    if budget > 0 {
      let end = csvc_now_ns() &+ budget
      var round = 0
      while found == nil {
        csvc_pause()
        found = try attempt()
        round &+= 1
        if round & 31 == 0, csvc_now_ns() >= end { break }
      }
    }
    state = Spin.next(state, found: found != nil)
    return found
  }

  /// How often a sleeping receiver looks at the writers' liveness when that matters.
  static let livenessSlice: Int64 = 50_000_000

  /// The longest sleep before a sleeper looks at the ring again by itself: a waker that dies
  /// between taking the sleepers word and posting would otherwise leave it asleep for good.
  static let wakerSlice: Int64 = 100_000_000

  /// Sleeps on semaphore `index` until posted (true) or `deadline` (false); with `stop`, until
  /// it is stopped too (then throws the cancellation error). Unless posted, counts the caller
  /// out of `sleepers` (which it announced itself in) again.
  private func sleep(
    on index: UInt16, sleepers: UnsafeMutableRawPointer, deadline: Int64?, stop: WaitTicket?
  ) throws(IPCError) -> Bool {
    let woken: Bool
    do {
      woken = try packageSemaphoreOperation(
        id: semaphores.id, index: index, delta: -1, flags: 0,
        timeoutNanoseconds: deadline.map { max(0, $0 &- csvc_now_ns()) }, stop: stop)
    } catch {
      ChannelRing.withdraw(sleepers)
      throw error
    }
    if !woken { ChannelRing.withdraw(sleepers) }
    return woken
  }

  /// Posts `count` wake-ups on semaphore `index`, in one semop. `count` comes from the segment
  /// (a sleepers word), so it is untrusted: at most 32767 (`SEMVMX`, the most one semop adds)
  /// are posted, which wakes every sleeper there can be. A failure (the channel was removed, or
  /// the semaphore is already near `SEMVMX`: sleepers wake either way) is left to the sleepers,
  /// who see it themselves.
  func post(_ index: UInt16, _ count: UInt32) {
    guard count > 0 else { return }
    _ = try? packageSemaphoreOperation(
      id: semaphores.id, index: index, delta: Int16(min(count, 32767)), flags: 0,
      timeoutNanoseconds: nil)
  }

  static func nanoseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    guard seconds < Int64.max / 1_000_000_000 - 1 else { return Int64.max / 2 }
    return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
  }

  static func earlier(_ a: Int64?, _ b: Int64) -> Int64 { a.map { min($0, b) } ?? b }
}

struct ConsumerState {
  /// The next position to read.
  var head: UInt64 = 0
  /// The spin budget of the receiving side.
  var spin: Int64 = Spin.initial
}

/// The adaptive spin before sleeping. The state is the spin budget in nanoseconds when
/// positive: it doubles after a spin that found what it waited for and halves after one that did
/// not (sleeping was needed anyway). Below a microsecond, spinning stops: the state counts
/// `-offWaits` up to 0, waits with no spin (the other side runs on this CPU, or answers slowly),
/// and at 0 one wait probes with a short spin; if that finds it, spinning resumes. Time, not a count of `pause`s, whose length
/// varies tenfold across CPUs. (sysvipc_channel.h does the same.)
enum Spin {
  static let initial: Int64 = 20_000
  static let minimum: Int64 = 1_000
  static let maximum: Int64 = 200_000
  static let offWaits: Int64 = 16
  static let probe: Int64 = 4_000

  /// How long to spin in `state` (0: not at all).
  static func budget(_ state: Int64) -> Int64 { state > 0 ? state : state == 0 ? probe : 0 }

  /// The state after a wait in `state` whose spin found what it waited for, or did not.
  static func next(_ state: Int64, found: Bool) -> Int64 {
    if found { return min(max(state, initial / 2) * 2, maximum) }
    if state < 0 { return state + 1 }
    return state / 2 < minimum ? -offWaits : state / 2
  }
}

extension ChannelFault {
  func error(_ subject: String) -> IPCError {
    switch self {
    case .invalid(let why), .notAChannel(let why): IPCError(.invalidArgument, "\(subject): \(why)")
    case .uninitialised: IPCError(.busy, "\(subject): the channel header is not written yet")
    case .corrupt(let why): IPCError(.internal, "\(subject): corrupt channel: \(why)")
    case .removed: IPCError(.existential, "\(subject): the channel was removed")
    }
  }
}

extension IPCError {
  /// Whether this error says that every producer of a channel has gone
  /// (``MessageChannel/endsWhenProducersGone``): kind `IPCError.Kind.system` with
  /// `errno` `EPIPE`.
  public var isProducersGone: Bool { kind == .system && errno == .brokenPipe }
}
