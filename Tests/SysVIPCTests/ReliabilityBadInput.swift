import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One object of each kind in a known state, for the bad-input table: a semaphore at 3, a set
/// at [1, 2, 3], a 100-byte segment (attached writable, read-only, and detached), and a queue
/// of capacity 1000 holding one 20-byte message of type 7 (handles with maxMessageSize 64
/// and 1 MiB).
struct BadInputFixture: Sendable {
  static let seed = messagePattern(20, seed: 3)
  static let contents = messagePattern(100, seed: 9)

  let semaphore: SysVIPC.Semaphore
  let set: SemaphoreSet
  let memory: SharedMemory
  let readOnly: SharedMemory
  let detached: SharedMemory
  let queue: MessageQueue
  let wideQueue: MessageQueue

  init() throws {
    semaphore = try makeSemaphore(initialValue: 3)
    set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    try set.setValues([1, 2, 3])
    memory = try makeSharedMemory(size: 100, initCharacter: 0)
    try memory.write(Self.contents)
    readOnly = try SharedMemory.attach(id: memory.id, flags: .readOnly)
    detached = try SharedMemory.attach(id: memory.id)
    try detached.detach()
    queue = try makeMessageQueue(maxMessageSize: 64)
    try queue.setMaxSize(1000)
    try queue.send(Self.seed, type: 7)
    wideQueue = try MessageQueue(id: queue.id, maxMessageSize: 1 << 20)
  }

  func remove() {
    try? semaphore.remove()
    try? set.remove()
    try? memory.remove()
    try? queue.remove()
  }

  /// Everything a bad call could have changed.
  func snapshot() throws -> [String] {
    [
      "semaphore \(try semaphore.value) \(try semaphore.mode) \(try semaphore.uid)/\(try semaphore.gid)",
      "set \(try set.values()) \(try set.mode) \(try set.uid)/\(try set.gid)",
      "memory \(try memory.read()) \(try memory.mode) \(try memory.uid)/\(try memory.gid) "
        + "attached \(try memory.numberAttached) \(memory.isAttached) \(readOnly.isAttached) "
        + "\(detached.isAttached)",
      "queue \(try queue.currentMessages) \(try queue.currentBytes) \(try queue.maxSize) "
        + "\(try queue.mode) \(try queue.uid)/\(try queue.gid)",
    ]
  }
}

/// One bad input: the call, the kind of error it must get, and what its message must name.
struct BadInput: Sendable, CustomTestStringConvertible {
  var name: String
  var kind: IPCError.Kind
  var mentions: String
  var call: @Sendable (BadInputFixture) throws -> Void

  var testDescription: String { name }
}

/// The largest number of operations in one semop (`semopm`, /proc/sys/kernel/sem's third).
private let semopm: Int = {
  let text = (try? String(contentsOfFile: "/proc/sys/kernel/sem", encoding: .utf8)) ?? ""
  let fields = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
  return fields.count == 4 ? fields[2] : 32
}()

private let msgmax: Int = (try? messageQueueLimit("msgmax")) ?? 8192

let badInputs: [BadInput] = [
  // Key 0 (IPC_PRIVATE) names no existing object: it only ever creates (documented on
  // IPCKey.private), so opening with it is refused instead of silently creating.
  BadInput(name: "semaphore: open with key 0", kind: .invalidArgument, mentions: "private") { _ in
    _ = try SysVIPC.Semaphore(key: .private)
  },
  BadInput(name: "set: open with key 0", kind: .invalidArgument, mentions: "private") { _ in
    _ = try SemaphoreSet(key: .private, count: 0)
  },
  BadInput(name: "shared memory: open with key 0", kind: .invalidArgument, mentions: "private") {
    _ in _ = try SharedMemory(key: .private)
  },
  BadInput(name: "message queue: open with key 0", kind: .invalidArgument, mentions: "private") {
    _ in _ = try MessageQueue(key: .private)
  },

  // Deltas: sem_op is a C short.
  BadInput(name: "acquire delta 32768", kind: .outOfRange, mentions: "delta 32768") {
    try $0.semaphore.acquire(delta: 32768)
  },
  BadInput(
    name: "release delta 65537 (wraps to 1 in 16 bits)", kind: .outOfRange, mentions: "65537"
  ) {
    try $0.semaphore.release(delta: 65537)
  },
  BadInput(name: "release delta Int.min", kind: .outOfRange, mentions: "delta") {
    try $0.semaphore.release(delta: .min)
  },
  BadInput(name: "acquire delta 0", kind: .outOfRange, mentions: "delta 0") {
    try $0.semaphore.acquire(delta: 0)
  },
  BadInput(name: "set apply delta 32768", kind: .outOfRange, mentions: "delta 32768") {
    try $0.set.apply([.init(index: 0, delta: 32768)])
  },
  BadInput(name: "set apply delta -32768", kind: .outOfRange, mentions: "delta -32768") {
    try $0.set.apply([.init(index: 1, delta: -32768)])
  },
  BadInput(name: "set apply index 3 of 3", kind: .outOfRange, mentions: "index 3") {
    try $0.set.apply([.init(index: 0, delta: 1), .init(index: 3, delta: 1)])
  },
  BadInput(name: "set apply index -1", kind: .outOfRange, mentions: "index -1") {
    try $0.set.apply([.init(index: -1, delta: 1)])
  },
  BadInput(name: "set apply no operations", kind: .invalidArgument, mentions: "no operations") {
    try $0.set.apply([])
  },
  BadInput(
    name: "set apply more operations than semopm", kind: .outOfRange, mentions: "semopm",
  ) {
    try $0.set.apply(Array(repeating: .init(index: 0, delta: 1), count: semopm + 1))
  },

  // Values: 0...maxValue.
  BadInput(name: "setValue maxValue + 1", kind: .outOfRange, mentions: "32768") {
    try $0.semaphore.setValue(SysVIPC.Semaphore.maxValue + 1)
  },
  BadInput(name: "setValue -1", kind: .outOfRange, mentions: "-1") {
    try $0.semaphore.setValue(-1)
  },
  BadInput(name: "release past maxValue", kind: .outOfRange, mentions: "range") {
    try $0.semaphore.release(delta: SysVIPC.Semaphore.maxValue)
  },
  BadInput(name: "create with initialValue maxValue + 1", kind: .outOfRange, mentions: "32768") {
    _ in
    _ = try SysVIPC.Semaphore(
      key: nil, flags: .createExclusive, initialValue: SysVIPC.Semaphore.maxValue + 1)
  },
  BadInput(name: "set setValues with one too large", kind: .outOfRange, mentions: "40000") {
    try $0.set.setValues([0, 0, 40000])
  },
  BadInput(name: "set setValues with too few", kind: .invalidArgument, mentions: "2 values") {
    try $0.set.setValues([0, 0])
  },
  BadInput(name: "set setValue at index 3", kind: .outOfRange, mentions: "index 3") {
    try $0.set.setValue(0, at: 3)
  },
  BadInput(name: "set apply past maxValue", kind: .outOfRange, mentions: "range") {
    try $0.set.apply([.init(index: 2, delta: SysVIPC.Semaphore.maxValue)])
  },

  // Timeouts: a Duration is never NaN or infinite; negative ones are refused.
  BadInput(name: "acquire timeout -1 ns", kind: .invalidArgument, mentions: "negative") {
    try $0.semaphore.acquire(timeout: .nanoseconds(-1))
  },
  BadInput(name: "acquire timeout Duration min", kind: .invalidArgument, mentions: "negative") {
    try $0.semaphore.acquire(
      timeout: Duration(secondsComponent: .min, attosecondsComponent: 0))
  },
  BadInput(name: "waitForZero timeout -5 s", kind: .invalidArgument, mentions: "negative") {
    try $0.semaphore.waitForZero(timeout: .seconds(-5))
  },
  BadInput(name: "set apply timeout -1 ms", kind: .invalidArgument, mentions: "negative") {
    try $0.set.apply([.init(index: 0, delta: -1)], timeout: .milliseconds(-1))
  },
  BadInput(name: "openOrCreate timeout -1 s", kind: .invalidArgument, mentions: "negative") {
    _ = try SemaphoreSet.openOrCreate(key: $0.set.key, count: 3, timeout: .seconds(-1))
  },
  BadInput(name: "send timeout -1 ms", kind: .invalidArgument, mentions: "negative") {
    try $0.queue.send("x", timeout: .milliseconds(-1))
  },
  BadInput(name: "receive timeout -1 ms", kind: .invalidArgument, mentions: "negative") {
    _ = try $0.queue.receive(timeout: .milliseconds(-1))
  },
  BadInput(name: "receive into timeout -1 ms", kind: .invalidArgument, mentions: "negative") {
    fixture in
    var buffer = [UInt8](repeating: 0, count: 64)
    _ = try buffer.withUnsafeMutableBytes {
      try fixture.queue.receive(into: $0, timeout: .milliseconds(-1))
    }
  },

  // Message types: > 0 to send.
  BadInput(name: "send type 0", kind: .invalidArgument, mentions: "type 0") {
    try $0.queue.send("x", type: 0)
  },
  BadInput(name: "send type -1", kind: .invalidArgument, mentions: "type -1") {
    try $0.queue.send([1, 2, 3], type: -1)
  },
  BadInput(name: "send type Int.min", kind: .invalidArgument, mentions: "type") {
    try $0.queue.send("x", type: .min)
  },
  BadInput(name: "receive exceptType with type 0", kind: .invalidArgument, mentions: "exceptType") {
    _ = try $0.queue.receive(block: false, type: 0, options: .exceptType)
  },

  // Message sizes.
  BadInput(name: "send above maxMessageSize", kind: .outOfRange, mentions: "maxMessageSize") {
    try $0.queue.send(messagePattern(65))
  },
  BadInput(name: "send above msgmax", kind: .outOfRange, mentions: "msgmax") {
    try $0.wideQueue.send(messagePattern(msgmax + 1))
  },
  BadInput(name: "send above the queue's capacity", kind: .outOfRange, mentions: "capacity") {
    try $0.wideQueue.send(messagePattern(1001))
  },
  BadInput(name: "send above the capacity, non-blocking", kind: .outOfRange, mentions: "capacity") {
    try $0.wideQueue.send(messagePattern(1001), block: false)
  },
  BadInput(name: "receive into a too-small buffer", kind: .outOfRange, mentions: "stays queued") {
    fixture in
    var buffer = [UInt8](repeating: 0, count: 19)
    _ = try buffer.withUnsafeMutableBytes { try fixture.queue.receive(into: $0, block: false) }
  },
  BadInput(name: "receive into an empty buffer", kind: .outOfRange, mentions: "stays queued") {
    fixture in
    var buffer = [UInt8]()
    _ = try buffer.withUnsafeMutableBytes { try fixture.queue.receive(into: $0) }
  },
  BadInput(name: "receive with maxMessageSize 8", kind: .outOfRange, mentions: "stays queued") {
    _ = try MessageQueue(id: $0.queue.id, maxMessageSize: 8).receive()
  },
  BadInput(name: "setMaxSize -1", kind: .invalidArgument, mentions: "negative") {
    try $0.queue.setMaxSize(-1)
  },

  // Shared memory sizes, offsets and attachments.
  BadInput(name: "create shared memory of size 0", kind: .invalidArgument, mentions: "size 0") {
    _ in _ = try SharedMemory(key: nil, flags: .createExclusive, size: 0)
  },
  BadInput(name: "open with a size above the segment's", kind: .invalidArgument, mentions: "larger")
  {
    _ = try SharedMemory(key: $0.memory.key, size: 101)
  },
  BadInput(
    name: "write 2 bytes at 99 of 100 (inside the last page)", kind: .invalidArgument,
    mentions: "pass the end"
  ) {
    try $0.memory.write([1, 2], offset: 99)
  },
  BadInput(name: "write 1 byte at 100 of 100", kind: .invalidArgument, mentions: "pass the end") {
    try $0.memory.write([1], offset: 100)
  },
  BadInput(name: "write at offset Int.max", kind: .invalidArgument, mentions: "offset") {
    try $0.memory.write([1], offset: .max)
  },
  BadInput(name: "write at offset -1", kind: .invalidArgument, mentions: "offset") {
    try $0.memory.write([1], offset: -1)
  },
  BadInput(
    name: "read at offset 100 of 100 (inside the last page)", kind: .invalidArgument,
    mentions: "offset 100"
  ) {
    _ = try $0.memory.read(count: 1, offset: 100)
  },
  BadInput(name: "read count -1", kind: .invalidArgument, mentions: "count -1") {
    _ = try $0.memory.read(count: -1)
  },
  BadInput(name: "write through a read-only attachment", kind: .permissions, mentions: "read-only")
  {
    try $0.readOnly.write("x")
  },
  BadInput(
    name: "mutable bytes of a read-only attachment", kind: .permissions, mentions: "read-only"
  ) {
    try $0.readOnly.withUnsafeMutableBytes { $0[0] = 1 }
  },
  BadInput(
    name: "mutable span of a read-only attachment", kind: .permissions, mentions: "read-only"
  ) {
    try $0.readOnly.withMutableBytes { (span) throws(IPCError) in
      span.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
    }
  },
  BadInput(name: "read after detach", kind: .notAttached, mentions: "not attached") {
    _ = try $0.detached.read()
  },
  BadInput(name: "write after detach", kind: .notAttached, mentions: "not attached") {
    try $0.detached.write("x")
  },
  BadInput(name: "bytes after detach", kind: .notAttached, mentions: "not attached") {
    _ = try $0.detached.withUnsafeBytes { $0.count }
  },
  BadInput(name: "detach after detach", kind: .notAttached, mentions: "not attached") {
    try $0.detached.detach()
  },

  // Keys from files.
  BadInput(name: "ftok on a missing path", kind: .existential, mentions: "ftok") { _ in
    _ = try IPCKey(path: "/nonexistent/sysvipc-reliability", projectID: 1)
  },
  BadInput(name: "ftok with projectID 0", kind: .invalidArgument, mentions: "projectID") { _ in
    _ = try IPCKey(path: "/tmp", projectID: 0)
  },
  BadInput(name: "ftok with projectID 256", kind: .invalidArgument, mentions: "projectID") { _ in
    _ = try IPCKey(path: "/tmp", projectID: 256)
  },

  // Modes: nine bits.
  BadInput(name: "semaphore setMode 0o1000", kind: .invalidArgument, mentions: "0o777") {
    try $0.semaphore.setMode(0o1000)
  },
  BadInput(name: "set setMode 0o1777", kind: .invalidArgument, mentions: "0o777") {
    try $0.set.setMode(0o1777)
  },
  BadInput(name: "shared memory setMode 0o4600", kind: .invalidArgument, mentions: "0o777") {
    try $0.memory.setMode(0o4600)
  },
  BadInput(name: "queue setMode 0o7777", kind: .invalidArgument, mentions: "0o777") {
    try $0.queue.setMode(0o7777)
  },
  BadInput(name: "create a queue with mode 0o2600", kind: .invalidArgument, mentions: "0o777") {
    _ in _ = try MessageQueue(key: nil, flags: .createExclusive, mode: 0o2600)
  },

  // Owners: uid_t / gid_t -1 means "unchanged" to the kernel.
  BadInput(name: "semaphore setOwner uid UInt32.max", kind: .invalidArgument, mentions: "uid") {
    try $0.semaphore.setOwner(uid: .max)
  },
  BadInput(name: "set setOwner gid UInt32.max", kind: .invalidArgument, mentions: "gid") {
    try $0.set.setOwner(gid: .max)
  },
  BadInput(name: "shared memory setOwner uid UInt32.max", kind: .invalidArgument, mentions: "uid") {
    try $0.memory.setOwner(uid: .max, gid: 0)
  },
  BadInput(name: "queue setOwner gid UInt32.max", kind: .invalidArgument, mentions: "gid") {
    try $0.queue.setOwner(uid: 0, gid: .max)
  },
]

@Suite("Reliability: bad input", .tags(.reliability))
struct ReliabilityBadInputTests {
  /// Each bad input gets a clear `IPCError` of the right kind, with a message naming what
  /// was wrong, and changes nothing: the values, contents, messages, modes and owners of all
  /// four objects are as before, and the queued message is intact.
  @Test(arguments: badInputs)
  func badInputIsAClearErrorAndChangesNothing(_ input: BadInput) throws {
    let fixture = try BadInputFixture()
    defer { fixture.remove() }
    let before = try fixture.snapshot()
    let error = expectIPCError(input.kind) { try input.call(fixture) }
    if let error {
      #expect(error.message.contains(input.mentions), "\(error)")
    }
    #expect(try fixture.snapshot() == before)
    #expect(try fixture.queue.receive(block: false) == (BadInputFixture.seed, 7), "no message lost")
  }

  /// Reads clip at the end of the segment, not of its last page (documented): the bytes
  /// after the segment's end are never shown.
  @Test func readsClipAtTheEndOfTheSegmentNotOfItsPage() throws {
    let fixture = try BadInputFixture()
    defer { fixture.remove() }
    #expect(
      try fixture.memory.read(count: 10, offset: 95) == Array(BadInputFixture.contents[95...]))
    #expect(try fixture.memory.read(count: .max, offset: 99) == [BadInputFixture.contents[99]])
    #expect(try fixture.readOnly.read().count == 100)
  }

  /// The async forms check the same input the same way, before waiting.
  @Test func theAsyncFormsRefuseTheSameInput() async throws {
    let fixture = try BadInputFixture()
    defer { fixture.remove() }
    let before = try fixture.snapshot()
    await expectAsyncIPCError(.invalidArgument) {
      try await fixture.semaphore.acquire(timeout: .seconds(-1))
    }
    await expectAsyncIPCError(.outOfRange) { try await fixture.semaphore.acquire(delta: 40000) }
    await expectAsyncIPCError(.invalidArgument) {
      try await fixture.semaphore.waitForZero(timeout: .nanoseconds(-1))
    }
    await expectAsyncIPCError(.outOfRange) {
      try await fixture.set.apply([.init(index: 3, delta: 1)])
    }
    await expectAsyncIPCError(.invalidArgument) { try await fixture.queue.send("x", type: 0) }
    await expectAsyncIPCError(.invalidArgument) {
      try await fixture.queue.send("x", timeout: .seconds(-1))
    }
    await expectAsyncIPCError(.outOfRange) { try await fixture.queue.send(messagePattern(65)) }
    await expectAsyncIPCError(.outOfRange) {
      try await fixture.wideQueue.send(messagePattern(1001))
    }
    await expectAsyncIPCError(.invalidArgument) {
      _ = try await fixture.queue.receive(timeout: .milliseconds(-1))
    }
    await expectAsyncIPCError(.outOfRange) {
      _ = try await MessageQueue(id: fixture.queue.id, maxMessageSize: 8).receive()
    }
    #expect(try fixture.snapshot() == before)
    #expect(try await fixture.queue.receive(block: false) == (BadInputFixture.seed, 7))
  }

  /// An endless (non-contiguous) byte sequence, sent through a handle whose maxMessageSize
  /// (2^40) exceeds msgmax, or written into a 100-byte segment, in a helper whose address
  /// space may grow by 2 MiB only: the call must read at most one byte past the limit and
  /// refuse, not gather the sequence until memory runs out.
  @Test(
    .disabled(
      if: underSanitizer, "a sanitizer reserves terabytes of address space: no 2 MiB limit fits"),
    arguments: [("send", false), ("send", true), ("write", false)])
  func anEndlessSequenceIsRefusedNotGatheredUntilMemoryRunsOut(target: String, async: Bool)
    async throws
  {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let memory = try makeSharedMemory(size: 100, initCharacter: 0x2E)
    defer { try? memory.remove() }
    let id = target == "send" ? queue.id : memory.id
    let outcome = try await HelperProcess.run(
      ["rel-endless", target, String(id)] + (async ? ["--async"] : []))
    let expected = target == "send" ? "outOfRange" : "invalidArgument"
    #expect(outcome.status == 1, "the helper did not end normally: \(outcome.output.prefix(300))")
    #expect(outcome.errorKind == expected, "\(outcome.output.prefix(300))")
    #expect(try queue.currentMessages == 0)
    #expect(try memory.read() == [UInt8](repeating: 0x2E, count: 100), "nothing written")
  }
}
