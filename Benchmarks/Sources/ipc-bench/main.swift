// ipc-bench: the Swift side of the benchmarks. `ipc-bench SCENARIO [options]` prints one line
// `scenario=… impl=swift ops=… seconds=… ops_per_s=… [MB_per_s=…] [rtt_us=…] [field=…]`.
// c/ipc-bench.c is the same program in C (impl=c); run.py runs the two interleaved.
#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

let scenarios: [(String, (Options) throws -> Void)] = [
  ("sem_uncontended", semUncontended),
  ("sem_pingpong", semPingPong),
  ("mq_throughput", mqThroughput),
  ("mq_pingpong", mqPingPong),
  ("mq_local", mqLocal),
  ("chan_local", chanLocal),
  ("chan_throughput", chanThroughput),
  ("chan_pingpong", chanPingPong),
  ("shm_write", shmWrite),
  ("shm_read", shmRead),
  ("shm_counter", shmCounter),
  ("stat", stat),
  ("mq_wake", mqWake),
  ("idle_waiters", idleWaiters),
  ("cancel_latency", cancelLatency),
]

let childRoles: [(String, (ChildArguments) throws -> Void)] = [
  ("sem_pingpong", semPingPongChild),
  ("mq_throughput", mqThroughputChild),
  ("mq_pingpong", mqPingPongChild),
  ("chan_throughput", chanThroughputChild),
  ("chan_pingpong", chanPingPongChild),
  ("shm_counter", shmCounterChild),
  ("mq_wake", mqWakeChild),
]

let usage = """
  usage: ipc-bench SCENARIO [--iterations N] [--pin same|split|none] [--size BYTES]
                            [--api copy|zerocopy|alloc|buffer|async|blocking|pool|poller]
                            [--kind sem|shm|mq|mixed|all] [--seconds S] [--timeout SECONDS]
         ipc-bench list
  scenarios: \(scenarios.map(\.0).joined(separator: " "))
  """

let arguments = CommandLine.arguments
do {
  if arguments.count >= 3 && arguments[1] == "--child" {
    guard let run = childRoles.first(where: { $0.0 == arguments[2] })?.1 else {
      throw BenchFailure("unknown child role \(arguments[2])")
    }
    try run(ChildArguments(arguments.dropFirst(3)))
    exit(0)
  }
  if arguments.count == 2 && arguments[1] == "list" {
    for (name, _) in scenarios { print(name) }
    exit(0)
  }
  let options = try Options(arguments.dropFirst())
  guard let run = scenarios.first(where: { $0.0 == options.scenario })?.1 else {
    throw BenchFailure("unknown scenario \(options.scenario)\n\(usage)")
  }
  installSignalGuard(timeoutSeconds: options.timeoutSeconds)
  try run(options)
  cleanUp()
} catch {
  cleanUp()
  printError("ipc-bench: \(error)")
  exit(1)
}
