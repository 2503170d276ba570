import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// stale-user   create a semaphore, a shared memory segment and a message queue at one random
///              key, use each (a semop; an attachment that stays; a send and a receive), print
///              `key=`, `sem=`, `shm=`, `mq=` and `ready=yes`, then wait to be killed: the
///              stale-object tests kill one such process and keep another alive.
func staleCommand(_ command: String, _ args: inout Arguments) throws {
  guard command == "stale-user" else { fail("unknown command \(command)") }
  for _ in 0..<64 {
    let semaphore = try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    // A key taken by another kind of object: draw another.
    guard let memory = try? SharedMemory(key: semaphore.key, flags: .createExclusive, size: 100)
    else {
      try semaphore.remove()
      continue
    }
    guard let queue = try? MessageQueue(key: semaphore.key, flags: .createExclusive) else {
      try semaphore.remove()
      try memory.remove()
      continue
    }
    try semaphore.acquire()
    try semaphore.release()
    try memory.write("in use")
    try queue.send("ping")
    _ = try queue.receive()
    report("key", String(semaphore.key.rawValue))
    report("sem", String(semaphore.id))
    report("shm", String(memory.id))
    report("mq", String(queue.id))
    report("ready", "yes")
    while true { pause() }
  }
  fail("no key free for all three kinds")
}
