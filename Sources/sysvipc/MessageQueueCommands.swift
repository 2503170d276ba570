import ArgumentParser
import Foundation
import SysVIPC

extension SysVIPCTool {
  struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send a message to a queue (msgsnd).",
      discussion: """
        Exits with 3 when the queue is full and --nowait is given, or stays full until \
        --timeout expires.
        """)

    @OptionGroup var target: TargetAndText

    @Flag(help: "Send the bytes of standard input instead.")
    var stdin = false

    @Option(help: "The message type, 1 or more.")
    var type = 1

    @Flag(help: "Do not wait for room on a full queue: exit with status 3.")
    var nowait = false

    @Option(help: "Wait at most this many seconds for room (fractions allowed); exit status 3.")
    var timeout: SecondsArgument?

    func validate() throws {
      _ = try target.split(stdin: stdin)
      if type < 1 { throw ValidationError("--type must be 1 or more.") }
    }

    func run() throws {
      let (object, message) = try target.split(stdin: stdin)
      let bytes =
        stdin ? [UInt8](FileHandle.standardInput.readDataToEndOfFile()) : Array(message!.utf8)
      // Opened by id: sending needs write permission only (msgsnd); the tool reads nothing
      // else about the queue (the key lookup reads the system's list, which needs none).
      let queue = try MessageQueue(
        id: try object.resolve(.messageQueue), maxMessageSize: largestMessage())
      try queue.send(bytes, block: !nowait, type: type, timeout: timeout?.duration)
    }
  }

  struct Receive: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Receive a message from a queue (msgrcv) and print it.",
      discussion: """
        --type 0 takes the first message; a positive type the first of that type; a negative \
        type the first of the lowest type up to its magnitude. Exits with 3 when there is no \
        such message and --nowait is given, or none arrives before --timeout expires.
        """)

    @OptionGroup var target: Target

    @Option(help: "Which message to take (see above).")
    var type = 0

    @Flag(help: "Do not wait for a message: exit with status 3.")
    var nowait = false

    @Option(help: "Wait at most this many seconds (fractions allowed); exit status 3.")
    var timeout: SecondsArgument?

    @Flag(help: "Print the message's type and a space before it.")
    var showType = false

    @Flag(help: "Print the message's bytes only, without a newline.")
    var raw = false

    func run() throws {
      // A buffer for the largest message the kernel allows, so that every message fits.
      let queue = try MessageQueue(
        id: try target.resolve(.messageQueue), maxMessageSize: largestMessage())
      let (message, type) = try queue.receive(
        block: !nowait, type: self.type, timeout: timeout?.duration)
      var output: [UInt8] = showType ? Array("\(type) ".utf8) : []
      output += message
      if !raw { output.append(0x0A) }
      FileHandle.standardOutput.write(Data(output))
    }
  }
}

/// The largest message the kernel allows (`msgmax`), so that the tool refuses none itself.
func largestMessage() -> Int {
  ((try? IPCSystem.limits().msgmax) ?? nil) ?? 65536
}
