import ArgumentParser
import Foundation
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

extension SysVIPCTool {
  struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Watch two processes talk through shared memory guarded by a semaphore.",
      discussion: """
        Mrs. Premise (this process) creates a shared memory segment and a semaphore at one \
        random key and writes the time into the segment; Mrs. Conclusion (this program again, \
        started as a second process) opens both by that key. Then, round by round, each waits \
        for something new in the segment, checks that it is the MD5 of what she wrote last, \
        and writes back its MD5, releasing and re-acquiring the semaphore around every read: \
        the reference's sem_and_shm demo, on the same wire format. At the end Mrs. Premise \
        removes both objects (also when interrupted) and reports what happened.
        """)

    @Option(help: "How many rounds the two exchange.")
    var iterations = 10

    @Flag(help: "Do not use the semaphore: the conversation will probably be corrupted.")
    var liveDangerously = false

    @Option(help: "The size of the shared memory segment, in bytes.")
    var size = 4096

    @Option(help: "Permission bits of both objects, in octal.")
    var mode = ModeArgument(0o600)

    @Flag(name: .shortAndLong, help: "Print only the summary.")
    var quiet = false

    func validate() throws {
      if iterations < 1 { throw ValidationError("--iterations must be 1 or more.") }
      if size < 64 { throw ValidationError("--size must be at least 64 bytes.") }
    }

    func run() throws {
      let created = CreatedObjects(log: { interruption in
        printError(
          "sysvipc: \(interruption.signalName): removed \(interruption.recorded.count) object(s) "
            + "this process created")
      })
      let start = ContinuousClock.now
      do {
        let (semaphore, memory) = try createObjects(created)
        let speaker = Speaker(
          name: "Mrs. Premise", memory: memory, semaphore: liveDangerously ? nil : semaphore,
          quiet: quiet)
        speaker.say(
          "Oooo 'ello, I'm Mrs. Premise! (pid \(getpid())) I created shared memory \(memory.id) "
            + "(\(memory.size) bytes) and semaphore \(semaphore.id), both at key \(memory.key).")

        var lastWritten = Array(asciiTime().utf8)
        try speaker.write(lastWritten)
        speaker.say("I wrote the time, \(quoted(lastWritten)).")
        let child = try spawnConclusion(key: memory.key)
        created.adopt(child.pid)
        speaker.say("I started Mrs. Conclusion (pid \(child.pid)).")
        speaker.partnerGone = { child.hasExited }

        for round in 1...iterations {
          try speaker.cycle()
          let reply = try speaker.awaitNew(after: lastWritten)
          guard reply == Array(MD5.hex(lastWritten).utf8) else {
            throw DemoFailure.corrupted(speaker.name, round: round, read: reply)
          }
          lastWritten = Array(MD5.hex(reply).utf8)
          try speaker.write(lastWritten)
          speaker.say(
            "round \(round): read \(quoted(reply)), the MD5 of what I wrote; wrote its MD5")
        }
        // Let Mrs. Conclusion finish, then take the semaphore back before removing it.
        try speaker.semaphore?.release()
        let status = child.waitForExit()
        try speaker.semaphore?.acquire(timeout: .seconds(10))
        if status != 0 { throw DemoFailure.partnerFailed(status) }

        let errors = created.removeAll().errors
        if let error = errors.first { throw error }
        let elapsed = ContinuousClock.now - start
        let checked = 2 * iterations - 1
        let mode = liveDangerously ? ", without the semaphore" : ""
        printFlushed(
          """
          Done in \(seconds(elapsed))\(mode): \(iterations) rounds, \(2 * iterations + 1) messages, \
          each the MD5 of the one before (\(checked) checked, none corrupted).
          Mrs. Premise found the segment unchanged \(speaker.polls) times before a reply came.
          Removed shared memory \(memory.id) and semaphore \(semaphore.id) (key \(memory.key)).
          """)
      } catch {
        if created.wasInterrupted { while true { pause() } }
        created.terminateChildren()
        let errors = created.removeAll().errors
        for failure in errors { printError("sysvipc: \(failure)") }
        switch error {
        case let error as IPCError: SysVIPCTool.fail(error)
        default: throw error
        }
      }
    }

    /// A semaphore and a segment at one random key (the demos use one key for both).
    private func createObjects(_ created: CreatedObjects) throws(IPCError) -> (
      SysVIPC.Semaphore, SharedMemory
    ) {
      for _ in 0..<16 {
        let semaphore = try created.create { () throws(IPCError) in
          try SysVIPC.Semaphore(key: nil, flags: .createExclusive, mode: mode.mode)
        }
        do {
          let memory = try created.create { () throws(IPCError) in
            try SharedMemory(
              key: semaphore.key, flags: .createExclusive, mode: mode.mode, size: size)
          }
          return (semaphore, memory)
        } catch let error where error.kind == .existential {
          // That key is taken for shared memory: draw another.
          created.removeAll()
        }
      }
      throw IPCError(.existential, "no key free for both a semaphore and shared memory")
    }

    private func spawnConclusion(key: IPCKey) throws -> ChildProcess {
      var arguments = ["demo-conclusion", "--key", String(key.rawValue)]
      arguments += ["--iterations", String(iterations)]
      if liveDangerously { arguments.append("--live-dangerously") }
      if quiet { arguments.append("--quiet") }
      return try ChildProcess(executable: ownExecutable(), arguments)
    }
  }

  struct DemoConclusion: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "demo-conclusion",
      abstract: "Mrs. Conclusion, the second process of `sysvipc demo`.",
      shouldDisplay: false)

    @Option var key: KeyArgument
    @Option var iterations: Int
    @Flag var liveDangerously = false
    @Flag var quiet = false

    func run() throws {
      // Opened by key, as the reference's conclusion does: Mrs. Premise created them.
      let semaphore = try SysVIPC.Semaphore(key: key.key)
      let memory = try SharedMemory(key: key.key)
      let speaker = Speaker(
        name: "Mrs. Conclusion", memory: memory, semaphore: liveDangerously ? nil : semaphore,
        quiet: quiet)
      let parent = getppid()
      speaker.partnerGone = { getppid() != parent }

      var lastWritten: [UInt8] = []
      for round in 1...iterations {
        try speaker.semaphore?.acquire()
        let message = try speaker.awaitNew(after: lastWritten)
        // The first message (the time) cannot be checked; every later one must be the MD5.
        if round > 1, message != Array(MD5.hex(lastWritten).utf8) {
          throw DemoFailure.corrupted(speaker.name, round: round, read: message)
        }
        lastWritten = Array(MD5.hex(message).utf8)
        try speaker.write(lastWritten)
        speaker.say(
          "round \(round): read \(quoted(message))\(round > 1 ? ", the MD5 of what I wrote" : ""); "
            + "wrote its MD5")
        try speaker.semaphore?.release()
      }
    }
  }
}

/// One side of the conversation: reads and writes NUL-terminated text at the start of the
/// segment, and cycles the semaphore while it waits for news.
final class Speaker {
  let name: String
  let memory: SharedMemory
  let semaphore: SysVIPC.Semaphore?
  let quiet: Bool
  /// Checked while waiting, so that a side whose partner died does not wait forever.
  var partnerGone: () -> Bool = { false }
  /// How often a read found nothing new.
  var polls = 0

  init(name: String, memory: SharedMemory, semaphore: SysVIPC.Semaphore?, quiet: Bool) {
    self.name = name
    self.memory = memory
    self.semaphore = semaphore
    self.quiet = quiet
  }

  func say(_ line: String) {
    if !quiet { printFlushed("\(name): \(line)") }
  }

  /// The text before the first NUL (zero-copy scan, then one copy of the text).
  func read() throws(IPCError) -> [UInt8] {
    try memory.withUnsafeBytes { (buffer) throws(IPCError) in
      Array(buffer[..<(buffer.firstIndex(of: 0) ?? buffer.count)])
    }
  }

  func write(_ text: [UInt8]) throws(IPCError) {
    try memory.write(text + [0])
  }

  /// Releases and re-acquires the semaphore, giving the other side its turn. The acquire
  /// waits in slices, so that a partner's death is noticed even while waiting.
  func cycle() throws {
    guard let semaphore else { return }
    try semaphore.release()
    while true {
      do {
        try semaphore.acquire(timeout: .seconds(1))
        return
      } catch let error where error.kind == .busy {
        if partnerGone() { throw DemoFailure.partnerGone }
      }
    }
  }

  /// Reads until the segment holds something other than `last`. Every 1024 looks it checks
  /// that the partner still lives: a side that died could otherwise be waited for forever.
  func awaitNew(after last: [UInt8]) throws -> [UInt8] {
    var text = try read()
    while text == last {
      polls += 1
      if polls % 1024 == 0, partnerGone() { throw DemoFailure.partnerGone }
      try cycle()
      text = try read()
    }
    return text
  }
}

enum DemoFailure: Error, CustomStringConvertible {
  case corrupted(String, round: Int, read: [UInt8])
  case partnerGone
  case partnerFailed(Int32)

  var description: String {
    switch self {
    case .corrupted(let name, let round, let read):
      "\(name): shared memory corruption in round \(round): read \(quoted(read))"
    case .partnerGone: "the other process ended before the conversation did"
    case .partnerFailed(let status): "Mrs. Conclusion failed (exit status \(status))"
    }
  }
}

func quoted(_ text: [UInt8]) -> String {
  "\"" + String(decoding: text, as: UTF8.self) + "\""
}

func seconds(_ duration: Duration) -> String {
  let (whole, fraction) = duration.components
  let value = Double(whole) + Double(fraction) / 1e18
  return String(format: "%.2f s", value)
}
