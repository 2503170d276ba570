import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Commands that are not about one object kind:
/// whoami                                   print uid/euid
/// set-create-raw COUNT                      semget(IPC_PRIVATE, COUNT) with plain C, as PHP would
/// set-reader ID TOTAL                       read all values atomically until [0, TOTAL], counting
///                                           sums != TOTAL and the distinct states seen
/// race-open-or-create KEY GATE_ID VALUE     wait for the gate to reach zero, then openOrCreate and
///                                           take one unit
func otherCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "whoami":
    report("uid", String(getuid()))
    report("euid", String(geteuid()))
  case "set-create-raw":
    let id = semget(IPC_PRIVATE, args.int32("count"), IPC_CREAT | 0o600)
    guard id >= 0 else { fail("semget failed: \(errno)") }
    report("id", String(id))
  case "set-reader":
    let set = try SemaphoreSet(id: args.int32("id"))
    let total = Int(args.next("total"))!
    var violations = 0
    var transfersSeen = Set<Int>()
    report("reading", "yes")
    let end = monotonicSeconds() + 60
    while monotonicSeconds() < end {
      let values = try set.values()
      if values.reduce(0, +) != total { violations += 1 }
      transfersSeen.insert(values[1])
      if values[1] == total { break }
    }
    report("violations", String(violations))
    report("distinct", String(transfersSeen.count))
  case "race-open-or-create":
    let key = args.key()
    let gate = try Semaphore(id: args.int32("gate"))
    let value = Int(args.next("value"))!
    report("ready", "yes")
    try gate.waitForZero()
    let (semaphore, created) = try Semaphore.openOrCreateReportingCreation(
      key: key, initialValue: value, timeout: .seconds(30))
    report("created", created ? "yes" : "no")
    report("seen", String(try semaphore.value >= 0))
    try semaphore.acquire(timeout: .seconds(30))
  default:
    fail("unknown command \(command)")
  }
}
