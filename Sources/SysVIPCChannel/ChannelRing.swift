import CSysVIPCChannel

/// The lock-free part of the protocol: claiming, committing and consuming slots, and the
/// sleepers words. No system call happens here; MessageChannel adds the waiting.
///
/// Each slot has a 64-bit state word: the high half is the lap (position / capacity, modulo
/// 2^32) the slot is at, the low half says what it holds at that lap: ``ChannelLayout/free``, a
/// writer's process id (claimed, being written), ``ChannelLayout/committed`` or
/// ``ChannelLayout/abandoned``. A producer claims position p by a compare-and-swap of slot p's
/// state from (lap(p), free) to (lap(p), its pid), then moves the shared tail past p (any
/// producer may help with that), writes, and commits with a release store. The consumer reads a
/// committed slot and frees it for the next lap with a release store. A writer that dies leaves
/// its pid in the state word, so the consumer can tell a slow writer from a dead one, and skip
/// the slot of a dead one: no message is ever half-read, and no other producer waits for it.
///
/// Everything read from the segment is untrusted: positions are reduced modulo the capacity the
/// handle validated at open, lengths are checked against maxMessageSize, and every loop is
/// bounded, so that garbage gives a ``ChannelFault/corrupt(_:)``, never a stray access or a hang.
struct ChannelRing: @unchecked Sendable {
  let base: UnsafeMutableRawPointer
  let geometry: ChannelGeometry

  /// How many times a producer retries a claim that others keep beating before it reports the
  /// tail as corrupt (real contention settles in a handful).
  static let claimRetryLimit = 1 << 16

  // Wrapping arithmetic: the geometry was validated (index < capacity <= 2^24, stride <= 2^31),
  // so nothing here can overflow, and the checks would cost on every slot touched.
  @inline(__always) func slot(at position: UInt64) -> UnsafeMutableRawPointer {
    let capacity = UInt64(truncatingIfNeeded: geometry.capacity)
    let index =
      geometry.capacityShift >= 0
      ? Int(truncatingIfNeeded: position & (capacity &- 1))
      : Int(truncatingIfNeeded: position % capacity)
    return base + (ChannelLayout.headerSize &+ index &* geometry.slotStride)
  }

  @inline(__always) func lap(of position: UInt64) -> UInt32 {
    geometry.capacityShift >= 0
      ? UInt32(truncatingIfNeeded: position &>> UInt64(truncatingIfNeeded: geometry.capacityShift))
      : UInt32(truncatingIfNeeded: position / UInt64(truncatingIfNeeded: geometry.capacity))
  }

  @inline(__always) static func state(lap: UInt32, code: UInt32) -> UInt64 {
    UInt64(lap) << 32 | UInt64(code)
  }

  @inline(__always) func payload(at position: UInt64) -> UnsafeMutableRawPointer {
    slot(at: position) + ChannelLayout.slotHeaderSize
  }

  var tailWord: UnsafeMutableRawPointer { base + ChannelLayout.tailOffset }
  var headWord: UnsafeMutableRawPointer { base + ChannelLayout.headOffset }
  /// Set by `MessageChannel.remove()` before `IPC_RMID`; in the header's read-only first line
  /// (see ``ChannelLayout/removedOffset``).
  var removedWord: UnsafeMutableRawPointer { base + ChannelLayout.removedOffset }
  @inline(__always) var isRemoved: Bool { csvc_load32_relaxed(removedWord) != 0 }

  // MARK: Producer

  enum Claim: Equatable {
    case claimed(UInt64)
    /// The slot for the next position still holds the previous lap's message.
    case full
    case fault(ChannelFault)
  }

  /// Claims the next position for `writer` (its pid), or says the ring is full.
  @inline(__always)
  func claim(writer: UInt32) -> Claim {
    if isRemoved { return .fault(.removed) }
    var tail = csvc_load64_acquire(tailWord)
    for _ in 0..<Self.claimRetryLimit {
      let lap = lap(of: tail)
      let slot = slot(at: tail)
      let state = csvc_load64_acquire(slot)
      let distance = Int32(bitPattern: UInt32(truncatingIfNeeded: state >> 32) &- lap)
      if distance == 0 {
        if UInt32(truncatingIfNeeded: state) == ChannelLayout.free {
          if csvc_cas64(slot, state, Self.state(lap: lap, code: writer)) {
            _ = csvc_cas64(tailWord, tail, tail &+ 1)
            return .claimed(tail)
          }
          continue  // another producer took it: look again
        }
        // Claimed by someone whose tail move is still to come: help it, and go on.
        _ = csvc_cas64(tailWord, tail, tail &+ 1)
        tail = csvc_load64_acquire(tailWord)
      } else if distance == -1 {
        // Last lap's message is still there: full, unless the tail moved meanwhile.
        let now = csvc_load64_acquire(tailWord)
        if now == tail { return .full }
        tail = now
      } else if distance > 0 {
        let now = csvc_load64_acquire(tailWord)
        if now != tail {
          tail = now  // this look at the tail was stale: the ring moved on meanwhile
        } else if distance == 1 {
          // Position taken and consumed, but its writer died before moving the tail: move it.
          _ = csvc_cas64(tailWord, tail, tail &+ 1)
          tail = csvc_load64_acquire(tailWord)
        } else {
          return .fault(
            .corrupt(
              "slot of position \(tail) is at lap \(state >> 32), ahead of the tail's lap \(lap)"))
        }
      } else {
        return .fault(
          .corrupt(
            "slot of position \(tail) is at lap \(state >> 32), behind the tail's lap \(lap) by more than one"
          ))
      }
    }
    return .fault(.corrupt("the tail did not settle after \(Self.claimRetryLimit) tries"))
  }

  /// Publishes the message `writer` wrote at `position`: a compare-and-swap from (lap, writer)
  /// to (lap, committed). False when the slot no longer holds this claim: the consumer took
  /// `writer` for dead (a process in another PID namespace looks dead to it) and reclaimed the
  /// slot, which may be in use for a later lap by now. The state word is then left alone, so the
  /// ring stays consistent, and the message is not sent.
  @inline(__always)
  func commit(_ position: UInt64, writer: UInt32, type: Int, count: Int) -> Bool {
    let (slot, lap) = writeMessageHeader(position, type: type, count: count)
    return csvc_cas64(
      slot, Self.state(lap: lap, code: writer), Self.state(lap: lap, code: ChannelLayout.committed))
  }

  // MARK: The single producer

  /// Claims the next position for a channel's only producer, from its own cursor (`tail`), with
  /// no store at all: no other producer can take the slot, and the consumer only frees slots.
  /// The cursor moves past slots already used at its lap: after a producer died between
  /// committing and recording the tail, its successor starts from the recorded tail.
  @inline(__always)
  func claimExclusive(tail: inout UInt64) -> Claim {
    if isRemoved { return .fault(.removed) }
    for _ in 0...geometry.capacity {
      let lap = lap(of: tail)
      let state = csvc_load64_acquire(slot(at: tail))
      let distance = Int32(bitPattern: UInt32(truncatingIfNeeded: state >> 32) &- lap)
      let code = UInt32(truncatingIfNeeded: state)
      if distance == 0 && code == ChannelLayout.free { return .claimed(tail) }
      if distance == -1 { return .full }
      // Used at this lap (committed, abandoned) or already consumed (the next lap, free): the
      // cursor is stale.
      guard
        (distance == 0 && (code == ChannelLayout.committed || code == ChannelLayout.abandoned))
          || (distance == 1 && code == ChannelLayout.free)
      else {
        return .fault(
          .corrupt(
            "slot of position \(tail) has state 0x\(String(state, radix: 16)) at the single producer's lap \(lap)"
          ))
      }
      tail &+= 1
    }
    return .fault(.corrupt("no slot at or after the recorded tail is the producer's"))
  }

  /// Publishes the single producer's message at `position` (a release store: no one else can
  /// have changed the state) and records the tail past it.
  @inline(__always)
  func commitExclusive(_ position: UInt64, type: Int, count: Int) {
    let (slot, lap) = writeMessageHeader(position, type: type, count: count)
    csvc_store64_release(slot, Self.state(lap: lap, code: ChannelLayout.committed))
    csvc_store64_relaxed(tailWord, position &+ 1)
  }

  /// Writes the type and length of the message at `position` (before its state is published);
  /// returns its slot and lap.
  @inline(__always)
  private func writeMessageHeader(_ position: UInt64, type: Int, count: Int) -> (
    UnsafeMutableRawPointer, UInt32
  ) {
    let slot = slot(at: position)
    slot.storeBytes(of: Int64(type), toByteOffset: ChannelLayout.slotTypeOffset, as: Int64.self)
    slot.storeBytes(
      of: UInt32(truncatingIfNeeded: count), toByteOffset: ChannelLayout.slotLengthOffset,
      as: UInt32.self)
    return (slot, lap(of: position))
  }

  /// Gives up the claimed `position`: the consumer skips it.
  func abandon(_ position: UInt64) {
    csvc_store64_release(
      slot(at: position), Self.state(lap: lap(of: position), code: ChannelLayout.abandoned))
  }

  // MARK: Consumer

  enum Poll: Equatable {
    case message(count: Int, type: Int)
    case empty
    /// Claimed by process `writer`, not committed yet.
    case writing(writer: UInt32)
    case fault(ChannelFault)
  }

  /// Looks at the slot of `head`, skipping abandoned ones. A committed message stays in place
  /// until ``release(head:)``; a committed slot with an impossible length or type is dropped and
  /// reported.
  @inline(__always)
  func poll(head: inout UInt64) -> Poll {
    if isRemoved { return .fault(.removed) }
    for _ in 0...geometry.capacity {
      let slot = slot(at: head)
      let lap = lap(of: head)
      let state = csvc_load64_acquire(slot)
      guard UInt32(truncatingIfNeeded: state >> 32) == lap else {
        // The consumer freed this slot for this lap itself, so no producer can legitimately
        // hold it at another lap: it is garbage. Drop it (free it for the next lap, unless it
        // changed meanwhile) and move on, as for a bad state code, so the channel goes on.
        let position = head
        if csvc_cas64(slot, state, Self.state(lap: lap &+ 1, code: ChannelLayout.free)) {
          head &+= 1
          csvc_store64_relaxed(headWord, head)
        }
        return .fault(
          .corrupt(
            "slot of position \(position) is at lap \(state >> 32), expected lap \(lap); dropped"))
      }
      switch UInt32(truncatingIfNeeded: state) {
      case ChannelLayout.free: return .empty
      case ChannelLayout.committed:
        let count = Int(slot.load(fromByteOffset: ChannelLayout.slotLengthOffset, as: UInt32.self))
        let type = Int(slot.load(fromByteOffset: ChannelLayout.slotTypeOffset, as: Int64.self))
        guard count <= geometry.maxMessageSize, type > 0 else {
          release(head: &head)
          return .fault(
            .corrupt(
              "message at position \(head &- 1) has length \(count) (max \(geometry.maxMessageSize)) and type \(type); dropped"
            ))
        }
        return .message(count: count, type: type)
      case ChannelLayout.abandoned: release(head: &head)
      case let writer where writer <= ChannelLayout.maxWriterPID: return .writing(writer: writer)
      case let other:
        release(head: &head)
        return .fault(.corrupt("slot of position \(head &- 1) has state code \(other); dropped"))
      }
    }
    return .empty
  }

  /// Frees the slot of `head` for the next lap and moves past it.
  @inline(__always)
  func release(head: inout UInt64) {
    csvc_store64_release(
      slot(at: head), Self.state(lap: lap(of: head) &+ 1, code: ChannelLayout.free))
    head &+= 1
    csvc_store64_relaxed(headWord, head)
  }

  /// Frees the slot of `head` that `writer` claimed and never committed (the writer is dead).
  /// False when the state changed meanwhile (the writer committed after all).
  func reclaim(head: inout UInt64, writer: UInt32) -> Bool {
    let lap = lap(of: head)
    guard
      csvc_cas64(
        slot(at: head), Self.state(lap: lap, code: writer),
        Self.state(lap: lap &+ 1, code: ChannelLayout.free))
    else { return false }
    head &+= 1
    csvc_store64_relaxed(headWord, head)
    return true
  }

  /// The head a (new) consumer starts from: the recorded one, moved past slots a consumer that
  /// died between freeing a slot and recording the head already freed.
  func startingHead() -> UInt64 {
    var head = csvc_load64_relaxed(headWord)
    for _ in 0..<geometry.capacity {
      let state = csvc_load64_acquire(slot(at: head))
      guard state == Self.state(lap: lap(of: head) &+ 1, code: ChannelLayout.free) else { break }
      head &+= 1
    }
    return head
  }

  // MARK: Sleepers

  /// The sleepers word the consumer announces itself in (producers read it after each commit).
  var consumerSleepers: UnsafeMutableRawPointer { base + ChannelLayout.consumerSleepersOffset }
  /// The sleepers word of producers waiting for space (the consumer reads it after each free).
  var producerSleepers: UnsafeMutableRawPointer { base + ChannelLayout.producerSleepersOffset }

  /// Counts the caller in as a sleeper; a full fence, so that the caller's next look at the ring
  /// and a waker's look at the word cannot both miss each other.
  @inline(__always) static func announce(_ word: UnsafeMutableRawPointer) {
    _ = csvc_add32(word, 1)
  }

  /// Counts the caller out again after it did not sleep (or timed out). When a waker already
  /// took the count (and posted for it), the post stays behind: one spurious wake-up later.
  static func withdraw(_ word: UnsafeMutableRawPointer) {
    for _ in 0..<64 {
      let count = csvc_load32_seqcst(word)
      if count == 0 || csvc_cas32(word, count, count - 1) { return }
    }
  }

  /// After publishing: how many sleepers to post for (taking them), 0 on the fast path. The
  /// fence orders the publishing store before the load of the word.
  @inline(__always) static func takeSleepers(_ word: UnsafeMutableRawPointer) -> UInt32 {
    csvc_fence()
    guard csvc_load32_relaxed(word) != 0 else { return 0 }
    return csvc_exchange32(word, 0)
  }
}
