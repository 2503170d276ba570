// alloc-count: heap allocations per operation on the library's hot paths, counted by the
// interposed malloc family of CAllocCounter. Prints one line per path:
// `path=… ops=… allocations=… per_op=… target=… result=ok|MISS`; exits 1 on a miss.
import CAllocCounter
import SysVIPC
import SysVIPCChannel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

nonisolated(unsafe) var failures = 0

/// Writes to standard error (Swift 6 refuses the C global `stderr`).
func printError(_ message: String) {
  var message = message + "\n"
  message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Runs `body` (one operation per call) `ops` times after a warm-up, and reports the
/// allocations made meanwhile by anyone in the process divided by `ops`. `target` nil: reported
/// only, not a hot path.
func measure(
  _ path: String, ops: Int = 10_000, target: Int? = 0, _ body: () throws -> Void
) rethrows {
  for _ in 0..<100 { try body() }
  let before = alloc_counter_read()
  for _ in 0..<ops { try body() }
  let after = alloc_counter_read()
  let count =
    (after.allocations - before.allocations) + (after.reallocations - before.reallocations)
  let perOp = Double(count) / Double(ops)
  var line = "path=\(path) ops=\(ops) allocations=\(count) per_op=\(perOp)"
  if let target {
    let ok = perOp <= Double(target)
    if !ok { failures += 1 }
    line += " target=\(target) result=\(ok ? "ok" : "MISS")"
  } else {
    line += " target=none"
  }
  print(line)
}

var cleanup: [() -> Void] = []
defer { for action in cleanup.reversed() { action() } }

do {
  guard alloc_counter_active() != 0 else {
    printError("alloc-count: the interposed malloc is not in use; counts would be wrong")
    exit(2)
  }
  // The counter must see Swift's allocations, or every 0 below means nothing.
  var keep = 0
  measure("sanity_array", target: nil) {
    let array = [Int](repeating: keep, count: 64)
    keep &+= array.count
  }

  let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
  cleanup.append { try? semaphore.remove() }
  try measure("semaphore_acquire_release") {
    try semaphore.acquire()
    try semaphore.release()
  }
  try measure("semaphore_acquire_timeout_release") {
    try semaphore.acquire(timeout: .seconds(1))
    try semaphore.release()
  }
  try measure("semaphore_withAcquired") {
    try semaphore.withAcquired {}
  }
  try measure("semaphore_status", target: nil) { _ = try semaphore.status() }

  let set = try SemaphoreSet(key: nil, count: 2, flags: .createExclusive)
  cleanup.append { try? set.remove() }
  try set.setValues([1, 0])
  let move: [SemaphoreSet.Operation] = [.init(index: 0, delta: -1), .init(index: 1, delta: 1)]
  let back: [SemaphoreSet.Operation] = [.init(index: 0, delta: 1), .init(index: 1, delta: -1)]
  try measure("semaphoreset_apply_pair") {
    try set.apply(move)
    try set.apply(back)
  }

  let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096)
  cleanup.append { try? memory.remove() }
  let source = [UInt8](repeating: 7, count: 4096)
  var destination = [UInt8](repeating: 0, count: 4096)
  try source.withUnsafeBytes { source in
    try measure("shm_zerocopy_write_withUnsafeMutableBytes") {
      try memory.withUnsafeMutableBytes { $0.copyMemory(from: source) }
    }
  }
  try destination.withUnsafeMutableBytes { destination in
    try measure("shm_zerocopy_read_withUnsafeBytes") {
      try memory.withUnsafeBytes { destination.copyMemory(from: $0) }
    }
  }
  try measure("shm_zerocopy_withBytes_RawSpan") {
    keep &+= Int(try memory.withBytes { $0.unsafeLoad(fromByteOffset: 100, as: UInt8.self) })
  }
  try measure("shm_zerocopy_withMutableBytes_MutableRawSpan") {
    try memory.withMutableBytes { $0.storeBytes(of: 1, toByteOffset: 100, as: UInt8.self) }
  }
  try measure("shm_copy_write_array") { try memory.write(source) }
  try source.withUnsafeBytes { source in
    try measure("shm_copy_write_UnsafeRawBufferPointer") { try memory.write(source) }
  }
  // Returns a new array: one allocation is the API's shape.
  try measure("shm_copy_read_array", target: 1) { keep &+= Int(try memory.read(count: 4096)[0]) }
  try destination.withUnsafeMutableBytes { buffer in
    try measure("shm_copy_read_into", target: 0) { keep &+= try memory.read(into: buffer) }
  }
  try measure("shm_status", target: nil) { keep &+= try memory.status().numberAttached }

  let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: 8192)
  cleanup.append { try? queue.remove() }
  let inbox = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
  defer { inbox.deallocate() }
  for size in [8, 64, 1024, 8192] {
    let message = [UInt8](repeating: 1, count: size)
    try message.withUnsafeBytes { message in
      // One op: a send from a buffer, then a receive(into:) of it (one process, no waiting).
      try measure("mq_send_UnsafeRawBufferPointer+receive_into size=\(size)") {
        try queue.send(message)
        keep &+= try queue.receive(into: inbox).count
      }
    }
    try measure("mq_send_array+receive_into size=\(size)") {
      try queue.send(message)
      keep &+= try queue.receive(into: inbox).count
    }
    // Returns a new array: one allocation is the API's shape.
    try measure("mq_send_array+receive_array size=\(size)", target: 1) {
      try queue.send(message)
      keep &+= try queue.receive().message.count
    }
  }
  // MessageQueue.MessageBuffer: send and receive in the kernel's layout, no copy.
  var outgoing = try MessageQueue.MessageBuffer(capacity: 8192)
  var incoming = try MessageQueue.MessageBuffer(capacity: 8192)
  outgoing.withUnsafeMutableText(count: 8192) {
    _ = $0.initializeMemory(as: UInt8.self, repeating: 1)
  }
  try measure("mq_send_MessageBuffer+receive_MessageBuffer size=8192") {
    try queue.send(outgoing)
    try queue.receive(into: &incoming)
    keep &+= incoming.count
  }
  try measure("mq_status", target: nil) { keep &+= try queue.status().currentMessages }
  if keep == 42 { print("") }  // keeps `keep` alive

  // MessageChannel (issue 13): send from a buffer, receive(into:), reserve -> commit,
  // withReceived, and a receive that spins and then sleeps on the semaphore set until its
  // timeout (the slow path's semtimedop).
  for size in [64, 8192] {
    let channel = try MessageChannel.create(key: .private, capacity: 64, maxMessageSize: size)
    cleanup.append { try? channel.remove() }
    let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    message.initializeMemory(as: UInt8.self, repeating: 7)
    let into = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    cleanup.append {
      message.deallocate()
      into.deallocate()
    }
    try measure("chan_send_receive_into_\(size)") {
      try channel.send(UnsafeRawBufferPointer(message))
      guard try channel.receive(into: into).count == size else { throw IPCError(.internal, "size") }
    }
    try measure("chan_reserve_withReceived_\(size)") {
      try channel.reserve(count: size) { $0.count }
      try channel.withReceived { (bytes, _) throws(IPCError) in
        guard bytes.count == size else { throw IPCError(.internal, "size") }
      }
    }
  }
  // A single-producer channel's send (its own cursor, plain stores) and receive.
  let single = try MessageChannel.create(
    key: .private, capacity: 64, maxMessageSize: 64, singleProducer: true)
  cleanup.append { try? single.remove() }
  let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
  small.initializeMemory(as: UInt8.self, repeating: 5)
  cleanup.append { small.deallocate() }
  try measure("chan_single_producer_send_receive_into_64") {
    try single.send(UnsafeRawBufferPointer(small))
    guard try single.receive(into: small).count == 64 else { throw IPCError(.internal, "size") }
  }
  let idle = try MessageChannel.create(key: .private, capacity: 4, maxMessageSize: 8)
  cleanup.append { try? idle.remove() }
  let sink = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
  cleanup.append { sink.deallocate() }
  measure("chan_receive_sleep_timeout", ops: 500) {
    do {
      _ = try idle.receive(into: sink, timeout: .microseconds(20))
      failures += 1  // nothing was sent: it must time out
    } catch {}
  }
} catch {
  printError("alloc-count: \(error)")
  failures += 1
}
for action in cleanup.reversed() { action() }
cleanup = []
exit(failures == 0 ? 0 : 1)
