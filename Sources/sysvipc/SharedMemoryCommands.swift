import ArgumentParser
import Foundation
import SysVIPC

extension SysVIPCTool {
  struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write the bytes of a shared memory segment to standard output.",
      discussion: "The segment is attached read-only.")

    @OptionGroup var target: Target

    @Option(help: "Where to start, in bytes.")
    var offset = 0

    @Option(help: "How many bytes; 0 reads to the end of the segment.")
    var count = 0

    @Flag(
      help: "Stop at the first NUL byte and end with a newline (C strings, as the demos write).")
    var text = false

    func run() throws {
      let memory = try SharedMemory.attach(
        id: try target.resolve(.sharedMemory), flags: .readOnly)
      var bytes = try memory.read(count: count, offset: offset)
      if text {
        if let end = bytes.firstIndex(of: 0) { bytes.removeSubrange(end...) }
        bytes.append(0x0A)
      }
      FileHandle.standardOutput.write(Data(bytes))
    }
  }

  struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Write text, or standard input, into a shared memory segment.",
      discussion: "Writing past the end of the segment fails and writes nothing.")

    @OptionGroup var target: TargetAndText

    @Flag(help: "Write the bytes of standard input instead.")
    var stdin = false

    @Option(help: "Where to start, in bytes.")
    var offset = 0

    @Flag(help: "Append a NUL byte, so that C programs and `read --text` see where it ends.")
    var nul = false

    func validate() throws {
      _ = try target.split(stdin: stdin)
    }

    func run() throws {
      let (object, content) = try target.split(stdin: stdin)
      var bytes =
        stdin ? [UInt8](FileHandle.standardInput.readDataToEndOfFile()) : Array(content!.utf8)
      if nul { bytes.append(0) }
      let memory = try SharedMemory.attach(id: try object.resolve(.sharedMemory))
      try memory.write(bytes, offset: offset)
    }
  }
}
