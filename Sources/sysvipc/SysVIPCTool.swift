// `sysvipc`: System V IPC from the shell, built on the SysVIPC library's public API only.
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

@main
struct SysVIPCTool: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sysvipc",
    abstract: "List, inspect, create, use and remove System V semaphores, shared memory and "
      + "message queues.",
    discussion: """
      KIND is sem (semaphore), shm (shared-memory) or mq (message-queue).
      Objects are named by id (as `sysvipc list` shows it), or by key
      with --key (decimal, or hex with 0x).

      Exit status:
        0  success
        1  the IPC operation failed (no such object, permission denied,
           ...); the reason is on standard error
        2  usage error: unknown command, bad option or argument
        3  busy: the operation would have had to wait (--nowait), or its
           --timeout expired
      """,
    version: "0.1.0",
    subcommands: [
      List.self, Limits.self, Summary.self, Info.self, Remove.self, Create.self,
      Acquire.self, Release.self, Send.self, Receive.self, Read.self, Write.self,
      Demo.self, DemoConclusion.self,
    ])

  /// The exit statuses the help describes.
  enum Status {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let busy: Int32 = 3
  }

  /// Like ArgumentParser's `main()`, with the exit statuses above: usage errors exit with 2
  /// (ArgumentParser's default is 64), IPC failures with 1 or 3 and the error's message.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch let error as IPCError {
      fail(error)
    } catch let error as DemoFailure {
      printError("sysvipc: \(error)")
      terminate(Status.failure)
    } catch {
      let code = exitCode(for: error)
      let message = fullMessage(for: error)
      if code == .success {
        if !message.isEmpty { print(message) }
        terminate(0)
      }
      if !message.isEmpty { printError(message) }
      terminate(code == .validationFailure ? Status.usage : code.rawValue)
    }
  }

  /// Reports an IPC failure on standard error and exits with 1, or 3 when it was `busy`.
  static func fail(_ error: IPCError) -> Never {
    printError("sysvipc: \(error)")
    terminate(error.kind == .busy ? Status.busy : Status.failure)
  }
}

/// Prints a line and flushes it at once: two processes share the output in `demo`.
func printFlushed(_ line: String) {
  print(line)
  fflush(nil)
}

/// Ends the process with `status` (`exit`, which the command types' `exit(withError:)` hides).
func terminate(_ status: Int32) -> Never {
  fflush(nil)
  exit(status)
}
