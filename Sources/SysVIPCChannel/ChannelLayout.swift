import CSysVIPCChannel

// The channel's layout in its shared memory segment, version 1. ChannelLayout.md (the DocC
// catalog) and sysvipc_channel.h describe it for other implementations; keep all three in step.
// This file and ChannelRing.swift use nothing but the standard library and CSysVIPCChannel, so
// that the fuzz target (Fuzz/ChannelFuzz) compiles them on their own.

/// Offsets, sizes and constants of the layout.
enum ChannelLayout {
  /// "SVIPCCHN" as the bytes of a little-endian 64-bit word.
  static let magic: UInt64 = 0x4E48_4343_5049_5653
  static let version: UInt32 = 1
  static let headerSize = 256
  static let slotHeaderSize = 24
  static let lineSize = 64

  // The header: geometry (written once by the creator, magic last), then one cache line each
  // for the tail, the sleepers words and the head.
  static let magicOffset = 0
  static let versionOffset = 8
  static let headerSizeOffset = 12
  static let capacityOffset = 16
  static let maxMessageSizeOffset = 20
  static let slotStrideOffset = 24
  static let semaphoreSetIDOffset = 28
  static let segmentSizeOffset = 32
  static let producersEverOffset = 40
  /// Options fixed at creation; an opener refuses bits it does not know.
  static let flagsOffset = 44
  /// Flag: one producer handle at a time (registered exclusively, as the consumer is); it claims
  /// and commits slots with plain stores instead of compare-and-swaps.
  static let singleProducerFlag: UInt32 = 1
  static let knownFlags: UInt32 = singleProducerFlag
  /// The creator's PID namespace (the inode of `/proc/self/ns/pid`), 0 when unknown. Every
  /// process that uses the channel must share it: the consumer tells a dead writer by its pid.
  static let pidNamespaceOffset = 48
  /// Non-zero once the channel is being removed (set before `IPC_RMID`): sends and receives on
  /// handles still attached fail with `.existential` instead of losing messages. Both sides
  /// read it on every claim and poll, so it lives in the header's first cache line, which is
  /// written only at creation and removal: beside the tail (which producers write on every
  /// claim) it moved that line to the consumer and back for every message.
  static let removedOffset = 56
  static let tailOffset = 64
  static let consumerSleepersOffset = 128
  static let producerSleepersOffset = 132
  static let headOffset = 192

  // A slot: state word, type, length, payload.
  static let slotStateOffset = 0
  static let slotTypeOffset = 8
  static let slotLengthOffset = 16

  // The low half of a slot's state word (the high half is the lap).
  static let free: UInt32 = 0
  static let committed: UInt32 = 0xFFFF_FFFF
  static let abandoned: UInt32 = 0xFFFF_FFFE
  /// Writer codes below this are process ids (Linux's pid_max is at most 2^22).
  static let maxWriterPID: UInt32 = 0x7FFF_FFFF

  // The semaphore set.
  static let semaphoreCount = 4
  static let dataSemaphore: UInt16 = 0
  static let spaceSemaphore: UInt16 = 1
  static let producersSemaphore: UInt16 = 2
  static let consumerSemaphore: UInt16 = 3

  /// Limits that keep every offset computation far from overflow.
  static let maxCapacity = 1 << 24
  static let maxMessageSizeLimit = 1 << 30
}

/// The channel's shape: how many slots, of which size.
struct ChannelGeometry: Equatable, Sendable {
  let capacity: Int
  let maxMessageSize: Int
  let slotStride: Int
  let segmentSize: Int
  /// log2(capacity) when the capacity is a power of two (the usual choice), else -1: a slot and
  /// a lap are then a mask and a shift of the position instead of a 64-bit division each (tens
  /// of cycles, several times per message).
  let capacityShift: Int

  init(capacity: Int, maxMessageSize: Int, slotStride: Int, segmentSize: Int) {
    self.capacity = capacity
    self.maxMessageSize = maxMessageSize
    self.slotStride = slotStride
    self.segmentSize = segmentSize
    capacityShift =
      capacity > 0 && capacity & (capacity - 1) == 0 ? capacity.trailingZeroBitCount : -1
  }

  /// The geometry for `capacity` slots of `maxMessageSize` bytes, or why there is none.
  static func make(capacity: Int, maxMessageSize: Int) -> Result<ChannelGeometry, ChannelFault> {
    guard (1...ChannelLayout.maxCapacity).contains(capacity) else {
      return .failure(
        .invalid("capacity \(capacity) is outside 1...\(ChannelLayout.maxCapacity)"))
    }
    guard (1...ChannelLayout.maxMessageSizeLimit).contains(maxMessageSize) else {
      return .failure(
        .invalid(
          "maxMessageSize \(maxMessageSize) is outside 1...\(ChannelLayout.maxMessageSizeLimit)"))
    }
    let line = ChannelLayout.lineSize
    let stride = (ChannelLayout.slotHeaderSize + maxMessageSize + line - 1) / line * line
    let (ring, overflow) = capacity.multipliedReportingOverflow(by: stride)
    guard !overflow, ring <= Int(Int32.max) * 64 else {
      return .failure(.invalid("capacity \(capacity) × slot \(stride) bytes is too large"))
    }
    return .success(
      ChannelGeometry(
        capacity: capacity, maxMessageSize: maxMessageSize, slotStride: stride,
        segmentSize: ChannelLayout.headerSize + ring))
  }
}

/// What went wrong inside the ring or its header; MessageChannel turns it into an IPCError.
enum ChannelFault: Error, Equatable, Sendable {
  /// Bad arguments of the caller (`.invalidArgument`).
  case invalid(String)
  /// The segment is not a channel of this version, or its geometry is impossible
  /// (`.invalidArgument`).
  case notAChannel(String)
  /// The creator has not finished writing the header (yet).
  case uninitialised
  /// A value read from the segment breaks the protocol (`.internal`).
  case corrupt(String)
  /// The channel was removed (its removed word is set): `.existential`.
  case removed
}

/// A header as read from a segment, validated.
struct ChannelHeader: Equatable, Sendable {
  let geometry: ChannelGeometry
  let semaphoreSetID: Int32
  /// The creator's PID namespace; 0 when it was not recorded (it could not be read).
  var pidNamespace: UInt64 = 0
  /// The flags word (``ChannelLayout/singleProducerFlag``).
  var flags: UInt32 = 0

  var isSingleProducer: Bool { flags & ChannelLayout.singleProducerFlag != 0 }

  /// Writes a new header into a zero-filled segment; the magic goes last, with release order,
  /// so that an opener that sees it sees everything else.
  static func write(
    _ geometry: ChannelGeometry, semaphoreSetID: Int32, pidNamespace: UInt64 = 0,
    flags: UInt32 = 0, to base: UnsafeMutableRawPointer
  ) {
    base.storeBytes(
      of: ChannelLayout.version, toByteOffset: ChannelLayout.versionOffset, as: UInt32.self)
    base.storeBytes(
      of: UInt32(ChannelLayout.headerSize), toByteOffset: ChannelLayout.headerSizeOffset,
      as: UInt32.self)
    base.storeBytes(
      of: UInt32(geometry.capacity), toByteOffset: ChannelLayout.capacityOffset, as: UInt32.self)
    base.storeBytes(
      of: UInt32(geometry.maxMessageSize), toByteOffset: ChannelLayout.maxMessageSizeOffset,
      as: UInt32.self)
    base.storeBytes(
      of: UInt32(geometry.slotStride), toByteOffset: ChannelLayout.slotStrideOffset,
      as: UInt32.self)
    base.storeBytes(
      of: semaphoreSetID, toByteOffset: ChannelLayout.semaphoreSetIDOffset, as: Int32.self)
    base.storeBytes(
      of: UInt64(geometry.segmentSize), toByteOffset: ChannelLayout.segmentSizeOffset,
      as: UInt64.self)
    base.storeBytes(
      of: pidNamespace, toByteOffset: ChannelLayout.pidNamespaceOffset, as: UInt64.self)
    base.storeBytes(of: flags, toByteOffset: ChannelLayout.flagsOffset, as: UInt32.self)
    base.storeBytes(of: 0, toByteOffset: ChannelLayout.removedOffset, as: UInt32.self)
    // Slot i starts free for position i (lap 0): all zero, as a new segment is.
    csvc_store64_release(base + ChannelLayout.magicOffset, ChannelLayout.magic)
  }

  /// Reads and checks the header of a segment of `segmentSize` bytes at `base`. Every field is
  /// checked against the others and against the segment's real size before anything uses it.
  static func read(from base: UnsafeRawPointer, segmentSize: Int) -> Result<
    ChannelHeader, ChannelFault
  > {
    guard segmentSize >= ChannelLayout.headerSize else {
      return .failure(
        .notAChannel(
          "the segment has \(segmentSize) bytes, less than a channel header's \(ChannelLayout.headerSize)"
        ))
    }
    let magic = csvc_load64_acquire(base + ChannelLayout.magicOffset)
    if magic == 0 { return .failure(.uninitialised) }
    guard magic == ChannelLayout.magic else {
      return .failure(
        .notAChannel(
          "found magic 0x\(String(magic, radix: 16)), not a channel's 0x\(String(ChannelLayout.magic, radix: 16))"
        ))
    }
    func field(_ offset: Int) -> UInt32 {
      base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }
    let version = field(ChannelLayout.versionOffset)
    guard version == ChannelLayout.version else {
      return .failure(
        .notAChannel(
          "found layout version \(version); this library speaks version \(ChannelLayout.version)"))
    }
    let headerSize = field(ChannelLayout.headerSizeOffset)
    guard headerSize == ChannelLayout.headerSize else {
      return .failure(
        .notAChannel("found header size \(headerSize), not \(ChannelLayout.headerSize)"))
    }
    let capacity = Int(field(ChannelLayout.capacityOffset))
    let maxMessageSize = Int(field(ChannelLayout.maxMessageSizeOffset))
    let geometry: ChannelGeometry
    switch ChannelGeometry.make(capacity: capacity, maxMessageSize: maxMessageSize) {
    case .success(let made): geometry = made
    case .failure(let fault):
      if case .invalid(let why) = fault { return .failure(.notAChannel("found \(why)")) }
      return .failure(fault)
    }
    let stride = Int(field(ChannelLayout.slotStrideOffset))
    let recorded = base.loadUnaligned(
      fromByteOffset: ChannelLayout.segmentSizeOffset, as: UInt64.self)
    guard stride == geometry.slotStride, recorded == UInt64(geometry.segmentSize) else {
      return .failure(
        .notAChannel(
          "found slot stride \(stride) and size \(recorded) for \(capacity) slots of \(maxMessageSize) bytes (expected \(geometry.slotStride) and \(geometry.segmentSize))"
        ))
    }
    guard geometry.segmentSize <= segmentSize else {
      return .failure(
        .notAChannel(
          "the header needs \(geometry.segmentSize) bytes; the segment has \(segmentSize)"))
    }
    let semaphoreSetID = base.loadUnaligned(
      fromByteOffset: ChannelLayout.semaphoreSetIDOffset, as: Int32.self)
    guard semaphoreSetID >= 0 else {
      return .failure(.notAChannel("found semaphore set id \(semaphoreSetID)"))
    }
    let flags = field(ChannelLayout.flagsOffset)
    guard flags & ~ChannelLayout.knownFlags == 0 else {
      return .failure(
        .notAChannel(
          "found flags 0x\(String(flags, radix: 16)); this library knows 0x\(String(ChannelLayout.knownFlags, radix: 16))"
        ))
    }
    // Any value: it is only ever compared with the opener's own namespace.
    let pidNamespace = base.loadUnaligned(
      fromByteOffset: ChannelLayout.pidNamespaceOffset, as: UInt64.self)
    return .success(
      ChannelHeader(
        geometry: geometry, semaphoreSetID: semaphoreSetID, pidNamespace: pidNamespace,
        flags: flags))
  }
}
