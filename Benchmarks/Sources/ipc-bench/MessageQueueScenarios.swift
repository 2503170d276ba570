// mq_throughput and mq_pingpong: syscall-bound (msgsnd, msgrcv), plus the wake-up of the other
// process whenever the queue runs empty or full (the default msg_qbytes, 16 KiB, holds only
// two 8 KiB messages), plus the copies (the kernel copies each message in and out).
import CBenchSupport
import SysVIPC

/// Room for the largest message of the scenarios (the C side uses the same).
let messageCapacity = 65536

/// One sending child, the parent receiving with `receive(into:)`: the clock runs over `n`
/// receives after `warm`. One op = one message.
func mqThroughput(_ options: Options) throws {
  let size = options.size ?? 64
  guard size <= messageCapacity else { throw BenchFailure("--size at most \(messageCapacity)") }
  let n = options.iterations ?? 100_000
  let warm = warmUp(n)
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: size)
  atCleanup { try? MessageQueue.remove(id: queue.id) }

  let child = try Child(
    role: "mq_throughput",
    ["cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "queue=\(queue.id)", "size=\(size)"])
  try pinSelf(parentCPU)
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageCapacity, alignment: 16)
  defer { buffer.deallocate() }
  for _ in 0..<warm {
    guard try queue.receive(into: buffer).count == size else {
      throw BenchFailure("mq_throughput: bad size")
    }
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    guard try queue.receive(into: buffer).count == size else {
      throw BenchFailure("mq_throughput: bad size")
    }
  }
  let elapsed = bench_now_ns() - start
  try child.join()
  cleanUp()
  report(
    "mq_throughput", ops: n, nanoseconds: elapsed, bytesPerOp: size,
    ["size": "\(size)", "pin": options.pin.rawValue])
}

func mqThroughputChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let size = try arguments.int("size")
  let n = try arguments.int("iterations")
  let queue = try MessageQueue(id: try arguments.int32("queue"), maxMessageSize: size)
  let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { message.deallocate() }
  message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
  let bytes = UnsafeRawBufferPointer(message)
  for _ in 0..<n { try queue.send(bytes) }
}

/// Type-1 requests from the parent, type-2 replies from the child, on one queue. One op = one
/// round trip.
func mqPingPong(_ options: Options) throws {
  let size = options.size ?? 64
  guard size <= messageCapacity else { throw BenchFailure("--size at most \(messageCapacity)") }
  let n = options.iterations ?? 50_000
  let warm = warmUp(n)
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: size)
  atCleanup { try? MessageQueue.remove(id: queue.id) }

  let child = try Child(
    role: "mq_pingpong",
    ["cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "queue=\(queue.id)", "size=\(size)"])
  try pinSelf(parentCPU)
  let request = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { request.deallocate() }
  request.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "q"))
  let requestBytes = UnsafeRawBufferPointer(request)
  let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: messageCapacity, alignment: 16)
  defer { reply.deallocate() }
  for _ in 0..<warm {
    try queue.send(requestBytes, type: 1)
    guard try queue.receive(into: reply, type: 2).count == size else {
      throw BenchFailure("mq_pingpong: bad reply")
    }
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try queue.send(requestBytes, type: 1)
    guard try queue.receive(into: reply, type: 2).count == size else {
      throw BenchFailure("mq_pingpong: bad reply")
    }
  }
  let elapsed = bench_now_ns() - start
  try child.join()
  cleanUp()
  report(
    "mq_pingpong", ops: n, nanoseconds: elapsed, roundTrip: true,
    ["size": "\(size)", "pin": options.pin.rawValue])
}

func mqPingPongChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let size = try arguments.int("size")
  let n = try arguments.int("iterations")
  let queue = try MessageQueue(id: try arguments.int32("queue"), maxMessageSize: size)
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageCapacity, alignment: 16)
  defer { buffer.deallocate() }
  for _ in 0..<n {
    let count = try queue.receive(into: buffer, type: 1).count
    try queue.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]), type: 2)
  }
}

/// MessageQueue.status(): one IPC_STAT.
func statMessageQueue(_ n: Int) throws -> Int64 {
  let queue = try MessageQueue(key: nil, flags: .createExclusive)
  atCleanup { try? MessageQueue.remove(id: queue.id) }
  var sink = 0
  for _ in 0..<warmUp(n) { sink &+= try queue.status().currentMessages + 1 }
  let start = bench_now_ns()
  for _ in 0..<n { sink &+= try queue.status().currentMessages + 1 }
  let elapsed = bench_now_ns() - start
  guard sink == n + warmUp(n) else { throw BenchFailure("stat mq: wrong values") }
  cleanUp()
  return elapsed
}

/// One process: send from a buffer, then `receive(into:)` of it; the queue never blocks. Not
/// one of the scenarios: it puts the send and receive paths under callgrind.sh, which
/// follows no child process. One op = one send + one receive.
func mqLocal(_ options: Options) throws {
  let size = options.size ?? 64
  guard size <= messageCapacity else { throw BenchFailure("--size at most \(messageCapacity)") }
  let n = options.iterations ?? 100_000
  let (cpu, _) = try cpuPlan(options.pin)
  try pinSelf(cpu)
  let queue = try MessageQueue(key: nil, flags: .createExclusive, maxMessageSize: size)
  atCleanup { try? MessageQueue.remove(id: queue.id) }
  let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { message.deallocate() }
  message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
  let bytes = UnsafeRawBufferPointer(message)
  if options.api == "buffer" {
    // MessageQueue.MessageBuffer: the message is built in, and received into, the kernel's
    // layout; no copy in user space, as C's own struct msgbuf.
    var out = try MessageQueue.MessageBuffer(capacity: size)
    out.withUnsafeMutableText(count: size) { $0.copyMemory(from: bytes) }
    var received = try MessageQueue.MessageBuffer(capacity: size)  // at most msgmax
    for _ in 0..<warmUp(n) {
      try queue.send(out)
      try queue.receive(into: &received)
    }
    let start = bench_now_ns()
    for _ in 0..<n {
      try queue.send(out)
      try queue.receive(into: &received)
      guard received.count == size else { throw BenchFailure("mq_local: bad size") }
    }
    let elapsed = bench_now_ns() - start
    cleanUp()
    report(
      "mq_local", ops: n, nanoseconds: elapsed, bytesPerOp: size,
      ["size": "\(size)", "api": "buffer", "pin": options.pin.rawValue])
    return
  }
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: messageCapacity, alignment: 16)
  defer { buffer.deallocate() }
  for _ in 0..<warmUp(n) {
    try queue.send(bytes)
    guard try queue.receive(into: buffer).count == size else {
      throw BenchFailure("mq_local: bad size")
    }
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try queue.send(bytes)
    guard try queue.receive(into: buffer).count == size else {
      throw BenchFailure("mq_local: bad size")
    }
  }
  let elapsed = bench_now_ns() - start
  cleanUp()
  report(
    "mq_local", ops: n, nanoseconds: elapsed, bytesPerOp: size,
    ["size": "\(size)", "pin": options.pin.rawValue])
}
