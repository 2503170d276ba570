// stat: status() of each kind, syscall-bound (semctl / shmctl / msgctl).
import CBenchSupport
import SysVIPC

/// `status()` reads; `--kind sem|shm|mq|all` (default all: one line per kind, `kind=` field).
func stat(_ options: Options) throws {
  let n = options.iterations ?? 100_000
  let (cpu, _) = try cpuPlan(options.pin)
  try pinSelf(cpu)
  let kinds = options.kind == "all" ? statKinds.map(\.0) : [options.kind]
  for kind in kinds {
    guard let run = statKinds.first(where: { $0.0 == kind })?.1 else {
      throw BenchFailure("stat: unknown --kind \(kind)")
    }
    let elapsed = try run(n)
    report("stat", ops: n, nanoseconds: elapsed, ["kind": kind, "pin": options.pin.rawValue])
  }
}

/// Semaphore.status(): IPC_STAT, GETVAL, GETPID, GETNCNT, GETZCNT (what it returns needs all five).
private func statSemaphore(_ n: Int) throws -> Int64 {
  let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
  atCleanup { try? SysVIPC.Semaphore.remove(id: semaphore.id) }
  var sink = 0
  for _ in 0..<warmUp(n) { sink &+= try semaphore.status().value }
  let start = bench_now_ns()
  for _ in 0..<n { sink &+= try semaphore.status().value }
  let elapsed = bench_now_ns() - start
  guard sink == n + warmUp(n) else { throw BenchFailure("stat sem: wrong values") }
  cleanUp()
  return elapsed
}

let statKinds: [(String, @Sendable (Int) throws -> Int64)] = [
  ("sem", statSemaphore),
  ("shm", statSharedMemory),
  ("mq", statMessageQueue),
]
