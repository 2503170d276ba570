// The README's usage example, as written there (this file imports neither Foundation nor
// Glibc, like a user's file that needs only SysVIPC): a renamed API breaks this build, not
// the README.
import SysVIPC
import Testing

@Suite("README example")
struct ReadmeExampleTests {
  @Test func usage() throws {
    // A lock shared by processes: created with a random unused key, removed when done.
    let lock = try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }

    // Shared memory, attached on creation; another process opens it by `memory.key`.
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 4096)
    defer { try? memory.remove() }

    try lock.withAcquired(timeout: .seconds(5)) {
      try memory.write("hello from Swift", offset: 0)
    }

    // Typed messages.
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    try queue.send("request", type: 1)
    let (message, type) = try queue.receive(type: 1)

    #expect(try memory.read(count: 16) == Array("hello from Swift".utf8))
    #expect(message == Array("request".utf8) && type == 1)
    #expect(try lock.value == 1)
  }

  @Test func asyncUsage() async throws {
    let lock = try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? lock.remove() }
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    try await queue.send("one", type: 2)

    try await lock.acquire(timeout: .seconds(5))
    for try await (message, type) in queue.messages() {
      #expect(message == Array("one".utf8) && type == 2)
      break
    }
    #expect(try lock.value == 0)
  }
}
