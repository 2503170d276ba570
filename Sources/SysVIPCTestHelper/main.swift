// The second process of the multi-process tests. The tests launch it with a command and its
// arguments; it prints `key=value` lines and ends with one `result=` line:
//   result=ok                      the command succeeded (exit status 0)
//   result=error kind=K message=M  the library threw IPCError of kind K (exit status 1)
// Global options come first:
//   --as-nobody        drop to uid/gid 65534 and prove it before doing anything else
//   --sigusr1          count SIGUSR1 with a handler installed without SA_RESTART
//   --sigusr1-restart  the same with SA_RESTART
// A helper whose parent goes ends at once (exit status 3): a crashed test run leaves none behind.
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

var arguments = Array(CommandLine.arguments.dropFirst())
exitWhenOrphaned()

while let first = arguments.first, first.hasPrefix("--") {
  arguments.removeFirst()
  switch first {
  case "--as-nobody": dropToNobody()
  case "--sigusr1": installSignalCounter(restart: false)
  case "--sigusr1-restart": installSignalCounter(restart: true)
  default: fail("unknown option \(first)")
  }
}

guard let command = arguments.first else { fail("no command") }
var args = Arguments(Array(arguments.dropFirst()))
let start = monotonicSeconds()
do {
  if command.hasPrefix("sem-") {
    try semaphoreCommand(command, &args)
  } else if command.hasPrefix("shm-") {
    try sharedMemoryCommand(command, &args)
  } else if command.hasPrefix("mq-") {
    try messageQueueCommand(command, &args)
  } else if command.hasPrefix("chan-") {
    try channelCommand(command, &args)
  } else if command.hasPrefix("wait-") {
    try waitCommand(command, &args)
  } else if command.hasPrefix("sys-") {
    try systemCommand(command, &args)
  } else if command.hasPrefix("stale-") {
    try staleCommand(command, &args)
  } else {
    try otherCommand(command, &args)
  }
  report("elapsed", String(monotonicSeconds() - start))
  report("signals", String(signalCount))
  report("result", "ok")
  exit(0)
} catch let error as IPCError {
  report("elapsed", String(monotonicSeconds() - start))
  report("signals", String(signalCount))
  print("result=error kind=\(error.kind) message=\(error.message)")
  exit(1)
} catch {
  print("result=failure message=\(error)")
  exit(3)
}
