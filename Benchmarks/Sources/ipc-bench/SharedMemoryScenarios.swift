// shm_write, shm_read: memory-bandwidth-bound (memcpy) at 1 MiB and 64 MiB; at 4 KiB the copy
// is an L1-cache copy of ~50 ns and the per-call cost of the API shows.
// shm_counter: syscall- and context-switch-bound (two semops per increment).
import CBenchSupport
import SysVIPC

/// Iterations moving 8 GiB per run below 4 MiB (cache-resident, fast), 1 GiB above.
func shmDefaultIterations(_ size: Int) -> Int {
  max(4, (size < 4 << 20 ? 8 << 30 : 1 << 30) / size)
}

/// `size` bytes between a private buffer and the segment per op: through the copying API
/// (`write(_:offset:)`, `read(into:offset:)`) or the zero-copy API (`withUnsafeMutableBytes` /
/// `withUnsafeBytes` around one copy), each paired with C's memcpy. `--api alloc` (shm_read
/// only) runs `read(count:offset:)`, which returns a new array: its line pairs with C's malloc +
/// memcpy + free per read, the same work.
func shmCopy(_ options: Options, write: Bool) throws {
  let size = options.size ?? 4096
  let n = options.iterations ?? shmDefaultIterations(size)
  let (cpu, _) = try cpuPlan(options.pin)
  try pinSelf(cpu)
  let memory = try SharedMemory(
    key: nil, flags: .createExclusive, size: size, initCharacter: UInt8(ascii: "s"))
  atCleanup { try? SharedMemory.remove(id: memory.id) }
  var buffer = [UInt8](repeating: UInt8(ascii: "b"), count: size)
  let zeroCopy = options.api == "zerocopy"
  if write && options.api == "alloc" { throw BenchFailure("--api alloc is for shm_read") }

  var elapsed: Int64 = 0
  var sink = 0
  switch (write, zeroCopy) {
  case (true, false):
    for _ in 0..<warmUp(n) { try memory.write(buffer) }
    let start = bench_now_ns()
    for _ in 0..<n { try memory.write(buffer) }
    elapsed = bench_now_ns() - start
  case (true, true):
    try buffer.withUnsafeBytes { source in
      for _ in 0..<warmUp(n) { try memory.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
      let start = bench_now_ns()
      for _ in 0..<n { try memory.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
      elapsed = bench_now_ns() - start
    }
  case (false, false) where options.api == "alloc":
    for _ in 0..<warmUp(n) { sink &+= Int(try memory.read(count: size)[size - 1]) }
    let start = bench_now_ns()
    for _ in 0..<n { sink &+= Int(try memory.read(count: size)[size - 1]) }
    elapsed = bench_now_ns() - start
    buffer[size - 1] = UInt8(truncatingIfNeeded: sink / (n + warmUp(n)))
  case (false, false):
    try buffer.withUnsafeMutableBytes { destination in
      for _ in 0..<warmUp(n) { sink &+= try memory.read(into: destination) }
      let start = bench_now_ns()
      for _ in 0..<n { sink &+= try memory.read(into: destination) }
      elapsed = bench_now_ns() - start
    }
    guard sink == size * (n + warmUp(n)) else { throw BenchFailure("shm: short read") }
  case (false, true):
    try buffer.withUnsafeMutableBytes { destination in
      for _ in 0..<warmUp(n) { try memory.withUnsafeBytes { destination.copyMemory(from: $0) } }
      let start = bench_now_ns()
      for _ in 0..<n { try memory.withUnsafeBytes { destination.copyMemory(from: $0) } }
      elapsed = bench_now_ns() - start
    }
  }
  let copied = write ? try memory.read(count: 1, offset: size - 1)[0] : buffer[size - 1]
  guard copied == UInt8(ascii: write ? "b" : "s") else {
    throw BenchFailure("shm: copy check failed")
  }
  cleanUp()
  report(
    write ? "shm_write" : "shm_read", ops: n, nanoseconds: elapsed, bytesPerOp: size,
    ["size": "\(size)", "api": options.api, "pin": options.pin.rawValue])
}

func shmWrite(_ options: Options) throws { try shmCopy(options, write: true) }
func shmRead(_ options: Options) throws { try shmCopy(options, write: false) }

/// Adds 1 to the 64-bit counter at the start of the segment (the caller holds the lock).
@inline(__always)
private func increment(_ memory: SharedMemory) throws {
  try memory.withUnsafeMutableBytes { bytes in
    bytes.storeBytes(of: bytes.load(as: UInt64.self) &+ 1, as: UInt64.self)
  }
}

/// Two processes each add 1 to a 64-bit counter in a segment `n` times under a semaphore; the
/// final value must be 2n. One op = one locked increment. `gate` says ready, then done.
func shmCounter(_ options: Options) throws {
  let n = options.iterations ?? 50_000
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096, initCharacter: 0)
  atCleanup { try? SharedMemory.remove(id: memory.id) }
  let lock = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
  atCleanup { try? SysVIPC.Semaphore.remove(id: lock.id) }
  let gate = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  atCleanup { try? SysVIPC.Semaphore.remove(id: gate.id) }

  let child = try Child(
    role: "shm_counter",
    [
      "cpu=\(childCPU ?? -1)", "iterations=\(n)", "shm=\(memory.id)", "lock=\(lock.id)",
      "gate=\(gate.id)",
    ])
  try pinSelf(parentCPU)
  try gate.acquire()  // ready
  let start = bench_now_ns()
  for _ in 0..<n {
    try lock.acquire()
    try increment(memory)
    try lock.release()
  }
  try gate.acquire()  // done
  let elapsed = bench_now_ns() - start
  try child.join()
  let final = try memory.withUnsafeBytes { $0.load(as: UInt64.self) }
  cleanUp()
  guard final == UInt64(2 * n) else {
    throw BenchFailure("shm_counter: counter is \(final), not \(2 * n)")
  }
  report(
    "shm_counter", ops: 2 * n, nanoseconds: elapsed,
    ["pin": options.pin.rawValue, "check": "ok"])
}

func shmCounterChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let n = try arguments.int("iterations")
  let memory = try SharedMemory.attach(id: try arguments.int32("shm"))
  let lock = try SysVIPC.Semaphore(id: try arguments.int32("lock"))
  let gate = try SysVIPC.Semaphore(id: try arguments.int32("gate"))
  try gate.release()
  for _ in 0..<n {
    try lock.acquire()
    try increment(memory)
    try lock.release()
  }
  try gate.release()
}

/// SharedMemory.status(): one IPC_STAT.
func statSharedMemory(_ n: Int) throws -> Int64 {
  let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096, initCharacter: 0)
  atCleanup { try? SharedMemory.remove(id: memory.id) }
  var sink = 0
  for _ in 0..<warmUp(n) { sink &+= try memory.status().numberAttached }
  let start = bench_now_ns()
  for _ in 0..<n { sink &+= try memory.status().numberAttached }
  let elapsed = bench_now_ns() - start
  guard sink == n + warmUp(n) else { throw BenchFailure("stat shm: wrong values") }
  cleanUp()
  return elapsed
}
