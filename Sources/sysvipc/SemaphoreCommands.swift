import ArgumentParser
import SysVIPC

extension SysVIPCTool {
  struct Acquire: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Wait until a semaphore's value is at least DELTA, then take DELTA (semop).",
      discussion: """
        Exits with 3 when --nowait is given and the semaphore is not available, or when \
        --timeout expires first.
        """)

    @OptionGroup var target: Target

    @Option(help: "Give up after this many seconds (fractions allowed); exit status 3.")
    var timeout: SecondsArgument?

    @Flag(help: "Do not wait: exit with status 3 at once when the semaphore is not available.")
    var nowait = false

    @Option(help: "How much to take.")
    var delta = 1

    func run() throws {
      var semaphore = try openSemaphore(target)
      semaphore.block = !nowait
      try semaphore.acquire(timeout: timeout?.duration, delta: delta)
    }
  }

  struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add DELTA to a semaphore's value (semop), waking waiters.")

    @OptionGroup var target: Target

    @Option(help: "How much to add.")
    var delta = 1

    func run() throws {
      try openSemaphore(target).release(delta: delta)
    }
  }
}

/// The semaphore a command names, by id or by key.
func openSemaphore(_ target: Target) throws(IPCError) -> SysVIPC.Semaphore {
  try SysVIPC.Semaphore(id: try target.resolve(.semaphore))
}
