// chan_throughput and chan_pingpong (issue 13): SysVIPCChannel's MessageChannel, a ring in
// shared memory with a semaphore set for sleeping; no system call while the other side is
// awake. The C side (c/ipc-bench.c) runs the same scenarios on sysvipc_channel.h, and
// limit_pingpong (C only) is the floor: one flag bounced through shared memory by spinning.
import CBenchSupport
import SysVIPC
import SysVIPCChannel

/// Slots in the benchmark channels.
let channelCapacity = 64

/// One sending child, the parent receiving with `receive(into:)`. One op = one message.
func chanThroughput(_ options: Options) throws {
  let size = options.size ?? 64
  let n = options.iterations ?? 1_000_000
  let warm = warmUp(n)
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  // Pinned before the channel is made and the child started: the same order as the C side's.
  try pinSelf(parentCPU)
  let single = options.api == "single"
  let channel = try MessageChannel.create(
    key: .private, capacity: channelCapacity, maxMessageSize: size, singleProducer: single)
  atCleanup { try? channel.remove() }
  let child = try Child(
    role: "chan_throughput",
    ["cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "channel=\(channel.id)", "size=\(size)"])
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { buffer.deallocate() }
  for _ in 0..<warm {
    guard try channel.receive(into: buffer).count == size else {
      throw BenchFailure("chan_throughput: bad size")
    }
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    guard try channel.receive(into: buffer).count == size else {
      throw BenchFailure("chan_throughput: bad size")
    }
  }
  let elapsed = bench_now_ns() - start
  try child.join()
  cleanUp()
  reportChannel("chan_throughput", ops: n, nanoseconds: elapsed, bytesPerOp: size, options)
}

func chanThroughputChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let size = try arguments.int("size")
  let n = try arguments.int("iterations")
  let channel = try MessageChannel.open(id: try arguments.int32("channel"))
  let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { message.deallocate() }
  message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
  let bytes = UnsafeRawBufferPointer(message)
  for _ in 0..<n { try channel.send(bytes) }
}

/// Requests on one channel, replies on another. One op = one round trip.
func chanPingPong(_ options: Options) throws {
  let size = options.size ?? 64
  let n = options.iterations ?? 200_000
  let warm = warmUp(n)
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  try pinSelf(parentCPU)  // before the channels are made, as above
  let single = options.api == "single"
  let requests = try MessageChannel.create(
    key: .private, capacity: channelCapacity, maxMessageSize: size, singleProducer: single)
  atCleanup { try? requests.remove() }
  let replies = try MessageChannel.create(
    key: .private, capacity: channelCapacity, maxMessageSize: size, singleProducer: single)
  atCleanup { try? replies.remove() }
  let child = try Child(
    role: "chan_pingpong",
    [
      "cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "requests=\(requests.id)",
      "replies=\(replies.id)", "size=\(size)",
    ])
  let request = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { request.deallocate() }
  request.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "q"))
  let requestBytes = UnsafeRawBufferPointer(request)
  let reply = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { reply.deallocate() }
  for _ in 0..<warm {
    try requests.send(requestBytes)
    guard try replies.receive(into: reply).count == size else {
      throw BenchFailure("chan_pingpong: bad reply")
    }
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try requests.send(requestBytes)
    guard try replies.receive(into: reply).count == size else {
      throw BenchFailure("chan_pingpong: bad reply")
    }
  }
  let elapsed = bench_now_ns() - start
  try child.join()
  cleanUp()
  reportChannel("chan_pingpong", ops: n, nanoseconds: elapsed, roundTrip: true, options)
}

func chanPingPongChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let size = try arguments.int("size")
  let n = try arguments.int("iterations")
  let requests = try MessageChannel.open(id: try arguments.int32("requests"))
  let replies = try MessageChannel.open(id: try arguments.int32("replies"))
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { buffer.deallocate() }
  for _ in 0..<n {
    let count = try requests.receive(into: buffer).count
    try replies.send(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
  }
}

/// One process sends and receives on one channel (`--api single`: a single-producer one): the
/// ring never waits, so the figure is the code's own cost per message (for callgrind.sh, which
/// follows no child). One op = one send + one receive(into:).
func chanLocal(_ options: Options) throws {
  let size = options.size ?? 64
  let n = options.iterations ?? 1_000_000
  let (cpu, _) = try cpuPlan(options.pin)
  try pinSelf(cpu)
  let single = options.api == "single"
  let channel = try MessageChannel.create(
    key: .private, capacity: channelCapacity, maxMessageSize: size, singleProducer: single)
  atCleanup { try? channel.remove() }
  let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { message.deallocate() }
  message.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
  let bytes = UnsafeRawBufferPointer(message)
  let into = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
  defer { into.deallocate() }
  for _ in 0..<warmUp(n) {
    try channel.send(bytes)
    _ = try channel.receive(into: into)
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try channel.send(bytes)
    guard try channel.receive(into: into).count == size else {
      throw BenchFailure("chan_local: bad size")
    }
  }
  let elapsed = bench_now_ns() - start
  cleanUp()
  reportChannel("chan_local", ops: n, nanoseconds: elapsed, bytesPerOp: size, options)
}

/// A channel scenario's result line: size and pin, and `api=single` for a single-producer
/// channel (the C side prints the same fields in the same order).
private func reportChannel(
  _ scenario: String, ops: Int, nanoseconds: Int64, bytesPerOp: Int? = nil,
  roundTrip: Bool = false, _ options: Options
) {
  let size = "\(options.size ?? 64)"
  if options.api == "single" {
    report(
      scenario, ops: ops, nanoseconds: nanoseconds, bytesPerOp: bytesPerOp, roundTrip: roundTrip,
      ["size": size, "pin": options.pin.rawValue, "api": "single"])
  } else {
    report(
      scenario, ops: ops, nanoseconds: nanoseconds, bytesPerOp: bytesPerOp, roundTrip: roundTrip,
      ["size": size, "pin": options.pin.rawValue])
  }
}
