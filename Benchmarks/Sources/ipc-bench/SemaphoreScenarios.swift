// sem_uncontended and sem_pingpong: syscall-bound (semop), the second also bound by the
// context switch or cross-CPU wake-up of each hand-over.
import CBenchSupport
import SysVIPC

/// acquire + release pairs on one semaphore that nobody else uses. One op = one pair.
func semUncontended(_ options: Options) throws {
  let n = options.iterations ?? 200_000
  let (cpu, _) = try cpuPlan(options.pin)
  try pinSelf(cpu)
  let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
  atCleanup { try? SysVIPC.Semaphore.remove(id: semaphore.id) }

  for _ in 0..<warmUp(n) {
    try semaphore.acquire()
    try semaphore.release()
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try semaphore.acquire()
    try semaphore.release()
  }
  let elapsed = bench_now_ns() - start
  guard try semaphore.value == 1 else { throw BenchFailure("sem_uncontended: value is not 1") }
  cleanUp()
  report("sem_uncontended", ops: n, nanoseconds: elapsed, ["pin": options.pin.rawValue])
}

/// Two processes, two semaphores: the parent releases `ping` and acquires `pong`; the child
/// acquires `ping` and releases `pong`. One op = one round trip.
func semPingPong(_ options: Options) throws {
  let n = options.iterations ?? 50_000
  let warm = warmUp(n)
  let (parentCPU, childCPU) = try cpuPlan(options.pin)
  let ping = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  atCleanup { try? SysVIPC.Semaphore.remove(id: ping.id) }
  let pong = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  atCleanup { try? SysVIPC.Semaphore.remove(id: pong.id) }

  let child = try Child(
    role: "sem_pingpong",
    ["cpu=\(childCPU ?? -1)", "iterations=\(warm + n)", "ping=\(ping.id)", "pong=\(pong.id)"])
  try pinSelf(parentCPU)
  try pong.acquire()  // the child is ready
  for _ in 0..<warm {
    try ping.release()
    try pong.acquire()
  }
  let start = bench_now_ns()
  for _ in 0..<n {
    try ping.release()
    try pong.acquire()
  }
  let elapsed = bench_now_ns() - start
  try child.join()
  cleanUp()
  report(
    "sem_pingpong", ops: n, nanoseconds: elapsed, roundTrip: true, ["pin": options.pin.rawValue])
}

func semPingPongChild(_ arguments: ChildArguments) throws {
  try arguments.setUp()
  let ping = try SysVIPC.Semaphore(id: try arguments.int32("ping"))
  let pong = try SysVIPC.Semaphore(id: try arguments.int32("pong"))
  let n = try arguments.int("iterations")
  try pong.release()
  for _ in 0..<n {
    try ping.acquire()
    try pong.release()
  }
}
