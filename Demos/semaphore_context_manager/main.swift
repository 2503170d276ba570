// A semaphore shared by a parent and a child process through `withAcquired`, the reference's
// semaphore_context_manager demo in Swift. The child sometimes throws inside the body: the
// semaphore is released all the same, and the parent gets it back either way.
//
//   swift run semaphore_context_manager [--throw yes|no|random] [--seconds S]
// (The parent starts this program again as `child KEY`.)
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

var arguments = Array(CommandLine.arguments.dropFirst())

/// The value of `--name VALUE`, removed from the arguments.
@MainActor func option(_ name: String) -> String? {
  guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else {
    return nil
  }
  defer { arguments.removeSubrange(index...(index + 1)) }
  return arguments[index + 1]
}

let throwChoice = option("throw") ?? "random"
let seconds = option("seconds").flatMap(Double.init) ?? 3
guard ["yes", "no", "random"].contains(throwChoice), seconds >= 0 else {
  printError("usage: semaphore_context_manager [--throw yes|no|random] [--seconds S]")
  exit(2)
}

func pause(seconds: Double) {
  if seconds > 0 { usleep(UInt32(seconds * 1_000_000)) }
}

struct ChildError: Error, CustomStringConvertible {
  var description: String { "ChildError: bailing out of the body on purpose" }
}

if arguments.first == "child", arguments.count == 2, let raw = Int32(arguments[1]) {
  // The child: wait for the semaphore and hold it in `withAcquired`.
  let say: @Sendable (String) -> Void = { line in ProgramSupport.say("child", line) }
  do {
    let semaphore = try Semaphore(key: IPCKey(rawValue: raw))
    say("waiting to acquire semaphore \(semaphore.id)")
    try semaphore.withAcquired {
      say("acquired semaphore \(semaphore.id); holding it for \(seconds) s")
      // Flip a coin (or do as told) to leave the body by throwing.
      if throwChoice == "yes" || (throwChoice == "random" && Bool.random()) {
        say("throwing, to show that the semaphore is released anyway")
        throw ChildError()
      }
      pause(seconds: seconds)
      say("leaving the body normally (releasing the semaphore)")
    }
    exit(0)
  } catch {
    say("\(error)")
    exit(1)
  }
}

// The parent.
let say: @Sendable (String) -> Void = { line in ProgramSupport.say("parent", line) }
let created = CreatedObjects(log: { say($0.description) })
do {
  let semaphore = try created.create { () throws(IPCError) in
    try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
  }
  say("created semaphore \(semaphore.id) with key \(semaphore.key.rawValue)")
  try semaphore.acquire()

  var childArguments = ["child", String(semaphore.key.rawValue), "--throw", throwChoice]
  childArguments += ["--seconds", String(seconds)]
  let child = try ChildProcess(executable: ownExecutable(), childArguments)
  created.adopt(child.pid)
  say("started the child (pid \(child.pid))")
  // Wait until the child is queued on the semaphore, rather than sleeping and hoping.
  while try semaphore.waitingForNonzero == 0 && !child.hasExited { usleep(1000) }
  for remaining in stride(from: Int(seconds.rounded(.up)), to: 0, by: -1) {
    say("the child will acquire the semaphore in \(remaining) s...")
    pause(seconds: seconds / seconds.rounded(.up))
  }
  try semaphore.release()

  say("waiting for the child to release the semaphore")
  try semaphore.acquire(timeout: .seconds(60))
  let status = child.waitForExit()
  say(
    status == 0
      ? "the child left the body normally and released the semaphore"
      : "the child threw inside the body (exit status \(status)), and the semaphore was "
        + "released all the same")
  say("the parent holds the semaphore again (value \(try semaphore.value)); destroying it")
  try semaphore.release()
  let (_, errors) = created.removeAll()
  if let error = errors.first { throw error }
  say("done: semaphore \(semaphore.id) is gone (open it by key \(semaphore.key.rawValue) to see)")
  exit(0)
} catch {
  if created.wasInterrupted { while true { pause() } }
  created.removeAll()
  printError("parent: \(error)")
  exit(1)
}
