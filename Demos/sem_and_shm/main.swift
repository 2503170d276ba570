// Mrs. Premise and Mrs. Conclusion, the reference's sem_and_shm demo in Swift: two programs that
// talk through one shared memory segment and one semaphore, interoperating with the Python and
// C versions (Demos/sem_and_shm/c) in every pairing.
//
//   swift run sem_and_shm premise [params.txt]      # first, in one terminal
//   swift run sem_and_shm conclusion [params.txt]   # then, in another
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

runConversation("sem_and_shm", premise: premise, conclusion: conclusion)

/// The text at the start of the segment, up to its NUL: the wire format of all versions.
func read(_ memory: SharedMemory) throws(IPCError) -> [UInt8] {
  try memory.withUnsafeBytes { (bytes) throws(IPCError) in
    Array(bytes[..<(bytes.firstIndex(of: 0) ?? bytes.count)])
  }
}

func write(_ memory: SharedMemory, _ text: [UInt8]) throws(IPCError) {
  try memory.write(text + [0])
}

func premise(_ params: DemoParams) throws -> Int32 {
  let say: @Sendable (String) -> Void = { line in ProgramSupport.say("premise", line) }
  say("Oooo 'ello, I'm Mrs. Premise!")
  let key = try params.key
  let mode = try params.permissions
  let dangerous = try params.liveDangerously
  let size = try params.sharedMemorySize
  let created = CreatedObjects(log: { say($0.description) })

  // Both exclusively, the semaphore first; its value 0 means that Mrs. Premise holds it.
  let semaphore = try created.create { () throws(IPCError) in
    try Semaphore(key: key, flags: .createExclusive, mode: mode, initialValue: 0)
  }
  let memory: SharedMemory
  do {
    memory = try created.create { () throws(IPCError) in
      try SharedMemory(key: key, flags: .createExclusive, mode: mode, size: size)
    }
  } catch {
    created.removeAll()
    throw error
  }
  say("created semaphore \(semaphore.id) and shared memory \(memory.id) at key \(key.rawValue)")

  /// Release, then acquire: Mrs. Conclusion's turn.
  func turn() throws(IPCError) {
    guard !dangerous else { return }
    try semaphore.release()
    try semaphore.acquire()
  }

  var status: Int32 = 0
  do {
    var last = Array(asciiTime().utf8)
    try write(memory, last)
    say("wrote \(text(last))")
    for i in 0..<(try params.iterations) {
      say("iteration \(i)")
      try turn()
      var message = try read(memory)
      while message == last {
        try turn()
        message = try read(memory)
      }
      say("read \(text(message))")
      guard message == Array(MD5.hex(last).utf8) else {
        say("Shared memory corruption after \(i) iterations")
        status = 1
        break
      }
      last = Array(MD5.hex(message).utf8)
      try write(memory, last)
      say("wrote \(text(last))")
    }
    if !dangerous && status == 0 {
      // Let Mrs. Conclusion finish: release, wait until she has detached (at most 5 s), and
      // take the semaphore back before removing it.
      say("Final release of the semaphore; waiting for Mrs. Conclusion to finish")
      try semaphore.release()
      var waited = 0
      while try memory.numberAttached > 1, waited < 500 {
        usleep(10_000)
        waited += 1
      }
      say("Final acquisition of the semaphore")
      try semaphore.acquire()
    }
  } catch {
    if created.wasInterrupted { while true { pause() } }
    say("\(error)")
    status = 1
  }
  say("Destroying semaphore and shared memory")
  try? memory.detach()
  let (_, errors) = created.removeAll()
  for error in errors { say("\(error)") }
  return errors.isEmpty ? status : 1
}

func conclusion(_ params: DemoParams) throws -> Int32 {
  let say: @Sendable (String) -> Void = { line in ProgramSupport.say("conclusion", line) }
  say("Oooo 'ello, I'm Mrs. Conclusion!")
  let key = try params.key
  let dangerous = try params.liveDangerously
  // Mrs. Premise created both: open them by key.
  let semaphore = try Semaphore(key: key)
  let memory = try SharedMemory(key: key)
  say("opened semaphore \(semaphore.id) and shared memory \(memory.id)")

  var last: [UInt8] = []
  for i in 0..<(try params.iterations) {
    say("iteration \(i)")
    if !dangerous { try semaphore.acquire() }
    var message = try read(memory)
    while message == last {
      if !dangerous {
        try semaphore.release()
        try semaphore.acquire()
      }
      message = try read(memory)
    }
    say("read \(text(message))")
    // The first message (the time) cannot be checked; every later one must be the MD5.
    if !last.isEmpty && message != Array(MD5.hex(last).utf8) {
      say("Shared memory corruption after \(i) iterations")
      if !dangerous { try semaphore.release() }
      return 1
    }
    last = Array(MD5.hex(message).utf8)
    try write(memory, last)
    say("wrote \(text(last))")
    if !dangerous { try semaphore.release() }
  }
  try memory.detach()
  return 0
}
