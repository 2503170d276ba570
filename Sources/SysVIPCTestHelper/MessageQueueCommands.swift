import SysVIPC

/// QUEUE below is an id, or `--key K [--mode M]` to open by key asking for access M (`--mode 0`
/// opens without asking for any, so that the send or receive itself meets the permission check).
///
/// mq-open KEY [--mode M]                          open by key (mode = access asked for)
/// mq-create [--mode M]                            create at a random key; prints id and key
/// mq-send QUEUE TEXT [--type T] [--timeout S] [--no-block]
/// mq-receive QUEUE [--type T] [--timeout S] [--no-block] [--except] [--truncate] [--max N]
///                                                 prints message, type and count
/// mq-serve ID N                                   N times: receive type 1, reply type 2 with
///                                                 the text upper-cased
/// mq-set-max-size ID BYTES
/// mq-remove ID
func messageQueueCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "mq-open":
    let queue = try MessageQueue(key: args.key(), mode: args.mode())
    report("id", String(queue.id))
  case "mq-create":
    let queue = try MessageQueue(key: nil, flags: .createExclusive, mode: args.mode())
    report("id", String(queue.id))
    report("key", String(queue.key.rawValue))
  case "mq-send":
    let queue = try openQueue(&args)
    let text = args.next("text")
    let type = args.option("type").flatMap(Int.init) ?? 1
    let block = !args.flag("no-block")
    let timeout = args.timeout()
    report("opened", "yes")
    report("waiting", "yes")
    try queue.send(text, block: block, type: type, timeout: timeout)
    report("sent", "yes")
  case "mq-receive":
    let maxMessageSize = args.option("max").flatMap(Int.init) ?? 2048
    let queue = try openQueue(&args, maxMessageSize: maxMessageSize)
    let type = args.option("type").flatMap(Int.init) ?? 0
    let block = !args.flag("no-block")
    let timeout = args.timeout()
    var options: MessageQueue.ReceiveOptions = []
    if args.flag("except") { options.insert(.exceptType) }
    if args.flag("truncate") { options.insert(.truncate) }
    report("opened", "yes")
    report("waiting", "yes")
    let (message, received) = try queue.receive(
      block: block, type: type, timeout: timeout, options: options)
    report("message", String(decoding: message, as: UTF8.self))
    report("type", String(received))
    report("count", String(message.count))
  case "mq-serve":
    let queue = try MessageQueue(id: args.int32("id"))
    let count = Int(args.next("count")) ?? 1
    for served in 1...max(count, 1) {
      report("waiting", "yes")
      let (request, _) = try queue.receive(type: 1)
      let reply = String(decoding: request, as: UTF8.self).uppercased()
      try queue.send(reply, type: 2)
      report("served", String(served))
    }
  case "mq-set-max-size":
    let queue = try MessageQueue(id: args.int32("id"))
    guard let bytes = Int(args.next("bytes")) else { fail("bytes is not a number") }
    try queue.setMaxSize(bytes)
    report("maxSize", String(try queue.maxSize))
  case "mq-remove":
    try MessageQueue.remove(id: args.int32("id"))
  default:
    fail("unknown command \(command)")
  }
}

/// The queue named by `--key K [--mode M]`, else by the next argument, an id.
private func openQueue(_ args: inout Arguments, maxMessageSize: Int = 2048) throws -> MessageQueue {
  if let key = args.option("key").flatMap(Int32.init) {
    return try MessageQueue(
      key: IPCKey(rawValue: key), mode: args.mode(), maxMessageSize: maxMessageSize)
  }
  return try MessageQueue(id: args.int32("id"), maxMessageSize: maxMessageSize)
}
