import SysVIPC

/// sys-list KIND ID        list every object; report whether KIND ID is among them, and how
///                         it looks (the listing reads objects whatever their permissions)
/// sys-object KIND ID      read one object by id (IPC_STAT: needs read permission)
/// sys-limits              the kernel's limits
/// KIND: semaphore, sharedMemory or messageQueue.
func systemCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "sys-list":
    let kind = objectKind(args.next("kind"))
    let id = args.int32("id")
    let objects = try IPCSystem.objects()
    report("count", String(objects.count))
    if let object = objects.first(where: { $0.kind == kind && $0.id == id }) {
      report("found", "yes")
      describe(object)
    } else {
      report("found", "no")
    }
  case "sys-object":
    let kind = objectKind(args.next("kind"))
    describe(try IPCSystem.object(kind, id: args.int32("id")))
  case "sys-limits":
    for (name, value) in try IPCSystem.limits().all {
      report(name, value.map(String.init) ?? "unknown")
    }
  default:
    fail("unknown command \(command)")
  }
}

private func objectKind(_ word: String) -> IPCObjectKind {
  guard let kind = IPCObjectKind(rawValue: word) else { fail("unknown kind \(word)") }
  return kind
}

private func describe(_ object: IPCObjectInfo) {
  report("key", String(object.key.rawValue))
  report("mode", String(object.mode.rawValue, radix: 8))
  report("uid", String(object.uid))
  report("cuid", String(object.cuid))
}
