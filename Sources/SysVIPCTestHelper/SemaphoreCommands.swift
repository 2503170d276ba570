import SysVIPC

/// sem-open KEY [--mode M]                       open by key (mode = access asked for)
/// sem-acquire ID [--timeout S] [--delta N] [--undo] [--no-block] [--hold]
/// sem-release ID [--delta N]
/// sem-zero ID [--timeout S]
/// sem-remove ID
/// sem-value ID
/// sem-set-mode ID MODE
func semaphoreCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "sem-open":
    let semaphore = try Semaphore(key: args.key(), mode: args.mode())
    report("id", String(semaphore.id))
  case "sem-acquire":
    var semaphore = try Semaphore(id: args.int32("id"))
    semaphore.undo = args.flag("undo")
    semaphore.block = !args.flag("no-block")
    let hold = args.flag("hold")
    let timeout = args.timeout()
    let delta = args.option("delta").flatMap(Int.init) ?? 1
    report("waiting", "yes")
    try semaphore.acquire(timeout: timeout, delta: delta)
    report("acquired", "yes")
    if hold { holdForever() }
  case "sem-release":
    let semaphore = try Semaphore(id: args.int32("id"))
    try semaphore.release(delta: args.option("delta").flatMap(Int.init) ?? 1)
  case "sem-zero":
    let semaphore = try Semaphore(id: args.int32("id"))
    let timeout = args.timeout()
    report("waiting", "yes")
    try semaphore.waitForZero(timeout: timeout)
  case "sem-remove":
    try Semaphore.remove(id: args.int32("id"))
  case "sem-value":
    report("value", String(try Semaphore(id: args.int32("id")).value))
  case "sem-set-mode":
    let semaphore = try Semaphore(id: args.int32("id"))
    let mode = IPCPermissions(rawValue: UInt32(args.next("mode"), radix: 8) ?? 0)
    try semaphore.setMode(mode)
  default:
    fail("unknown command \(command)")
  }
}
