import CSysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Feeds arbitrary bytes to the channel's reader and writer as if they were a segment: the body
/// of the fuzz target (Fuzz/ChannelFuzz.swift, Scripts/fuzz-channel.sh) and of the bounded fuzz
/// test. Any crash, out-of-bounds access (AddressSanitizer) or hang (libFuzzer's timeout) is a
/// defect; a violated invariant is counted in ``Outcome/violations``.
enum ChannelFuzzing {
  struct Outcome: Equatable {
    var headerRejected = 0
    var messages = 0
    var faults = 0
    var sent = 0
    var violations = 0
  }

  /// Byte 0 picks the mode: odd, `data` is the whole segment, header included; even, bytes 1
  /// and 2 pick a small valid geometry (and byte 1's high bit the single-producer flag) whose
  /// header is written over `data`, so that the ring behind it (tail, head, sleepers, slot
  /// states, lengths) is garbage under a good header.
  static func exercise(_ data: UnsafeRawBufferPointer) -> Outcome {
    var outcome = Outcome()
    guard let first = data.first else { return outcome }
    var size = data.count
    var geometry: ChannelGeometry?
    if first & 1 == 0, data.count >= 3,
      case .success(let made) = ChannelGeometry.make(
        capacity: 1 + Int(data[1] % 8), maxMessageSize: 1 + Int(data[2]) * 2)
    {
      geometry = made
      size = max(size, made.segmentSize)
    }
    let segment = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
    defer { segment.deallocate() }
    memset(segment.baseAddress!, 0, size)
    if data.count > 0 { memcpy(segment.baseAddress!, data.baseAddress!, data.count) }
    if let geometry {
      // The ring stays the fuzzer's bytes; only the header is made valid.
      segment.baseAddress!.storeBytes(of: 0, toByteOffset: 0, as: UInt64.self)
      let flags = data[1] & 0x80 != 0 ? ChannelLayout.singleProducerFlag : 0
      ChannelHeader.write(geometry, semaphoreSetID: 1, flags: flags, to: segment.baseAddress!)
    }
    let header: ChannelHeader
    switch ChannelHeader.read(from: segment.baseAddress!, segmentSize: size) {
    case .success(let read): header = read
    case .failure:
      outcome.headerRejected += 1
      return outcome
    }
    if header.geometry.segmentSize > size { outcome.violations += 1 }
    let ring = ChannelRing(base: segment.baseAddress!, geometry: header.geometry)
    var head = ring.startingHead()
    // A single producer's cursor starts at the recorded tail, as a registering one's does.
    var tail = csvc_load64_acquire(ring.tailWord)
    // Bounded: each round consumes, sends or stops.
    for round in 0..<(4 * header.geometry.capacity + 8) {
      switch ring.poll(head: &head) {
      case .message(let count, let type):
        guard count <= header.geometry.maxMessageSize, type > 0 else {
          outcome.violations += 1
          return outcome
        }
        // Read the message as a receiver would (AddressSanitizer checks the bounds).
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 1)
        memcpy(copy, ring.payload(at: head), count)
        copy.deallocate()
        ring.release(head: &head)
        outcome.messages += 1
      case .fault:
        outcome.faults += 1
      case .empty, .writing:
        let claim =
          header.isSingleProducer ? ring.claimExclusive(tail: &tail) : ring.claim(writer: 1)
        switch claim {
        case .claimed(let position):
          let payload = ring.payload(at: position)
          memset(payload, Int32(round & 0xFF), header.geometry.maxMessageSize)
          // Nothing else touches the ring here: the claim is still ours.
          if header.isSingleProducer {
            ring.commitExclusive(position, type: 1, count: header.geometry.maxMessageSize)
            tail = position &+ 1
          } else {
            guard
              ring.commit(position, writer: 1, type: 1, count: header.geometry.maxMessageSize)
            else {
              outcome.violations += 1
              return outcome
            }
          }
          outcome.sent += 1
        case .full: return outcome
        case .fault:
          outcome.faults += 1
          return outcome
        }
      }
    }
    return outcome
  }
}
