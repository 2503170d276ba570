// Mrs. Premise and Mrs. Conclusion over one message queue: the reference's message_queues demo
// in Swift. The queue does the locking: no semaphore, no corruption.
//
//   swift run message_queues premise [params.txt]      # first, in one terminal
//   swift run message_queues conclusion [params.txt]   # then, in another
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

runConversation("message_queues", premise: premise, conclusion: conclusion)

/// Receives until the message is not `last` (what this side sent), putting its own messages
/// back for the other side: the demo polls the queue as hard as it can.
func receiveNew(_ queue: MessageQueue, after last: [UInt8], _ say: (String) -> Void)
  throws(IPCError)
  -> [UInt8]
{
  var (message, _) = try queue.receive()
  say("received \(text(message))")
  while message == last {
    try queue.send(message)
    (message, _) = try queue.receive()
    say("received \(text(message))")
  }
  return message
}

func premise(_ params: DemoParams) throws -> Int32 {
  let say: @Sendable (String) -> Void = { line in ProgramSupport.say("premise", line) }
  say("Oooo 'ello, I'm Mrs. Premise!")
  let key = try params.key
  let mode = try params.permissions
  let created = CreatedObjects(log: { say($0.description) })
  let queue = try created.create { () throws(IPCError) in
    try MessageQueue(key: key, flags: .createExclusive, mode: mode)
  }
  say("created message queue \(queue.id) at key \(key.rawValue)")

  var status: Int32 = 0
  let iterations = try params.iterations
  do {
    var last = Array(asciiTime().utf8)
    say("sending \(text(last))")
    try queue.send(last)
    for i in 0..<iterations {
      say("iteration \(i)")
      let message = try receiveNew(queue, after: last, say)
      guard message == Array(MD5.hex(last).utf8) else {
        say("Message corruption after \(i) iterations")
        status = 1
        break
      }
      last = Array(MD5.hex(message).utf8)
      say("sending \(text(last))")
      try queue.send(last)
    }
    if status == 0 { say("\(iterations) iterations complete") }
  } catch {
    if created.wasInterrupted { while true { pause() } }
    say("\(error)")
    status = 1
  }
  say("Destroying the message queue")
  let (_, errors) = created.removeAll()
  for error in errors { say("\(error)") }
  return errors.isEmpty ? status : 1
}

func conclusion(_ params: DemoParams) throws -> Int32 {
  let say: @Sendable (String) -> Void = { line in ProgramSupport.say("conclusion", line) }
  say("Oooo 'ello, I'm Mrs. Conclusion!")
  // Mrs. Premise created the queue: open it by key.
  let queue = try MessageQueue(key: try params.key)
  let iterations = try params.iterations
  var last: [UInt8] = []
  for i in 0..<iterations {
    say("iteration \(i)")
    let message = try receiveNew(queue, after: last, say)
    // The first message (the time) cannot be checked; every later one must be the MD5.
    if !last.isEmpty && message != Array(MD5.hex(last).utf8) {
      say("Message corruption after \(i) iterations")
      return 1
    }
    last = Array(MD5.hex(message).utf8)
    say("sending \(text(last))")
    try queue.send(last)
  }
  say("\(iterations) iterations complete")
  return 0
}
