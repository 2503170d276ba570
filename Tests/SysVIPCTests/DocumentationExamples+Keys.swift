// The examples of the article "Keys" (SysVIPC.docc/Keys.md), compiled and run.
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A key that no object uses right now: drawn at random by creating an object, then freed.
/// The examples that need "the key your programs agree on" get one here, never a fixed number.
func unusedKeyForExamples() throws(IPCError) -> IPCKey {
  let probe = try SysVIPC.Semaphore(key: nil, flags: .createExclusive)
  let key = probe.key
  try probe.remove()
  return key
}

// Keys.md: a fixed key the programs agree on, and a check of who made the object.
/// Opens the service's lock at the key its programs agree on, creating it if needed, and
/// refuses a semaphore that another user created there first.
func openServiceLock(at key: IPCKey) throws(IPCError) -> SysVIPC.Semaphore {
  let lock = try SysVIPC.Semaphore.openOrCreate(key: key, initialValue: 1)
  try lock.verifyOwner(allowedMode: 0o600)
  return lock
}

@Suite("Documentation examples: Keys")
struct DocumentationExamplesKeys {
  @Test func randomKey() throws {
    // Keys.md: a random key.
    let semaphore = try SysVIPC.Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? semaphore.remove() }
    let announcement = "semaphore key: \(semaphore.key)"  // "semaphore key: 0x1b3d5f71"
    // Keys.md: the other process.
    let opened = try SysVIPC.Semaphore(key: semaphore.key)
    #expect(opened.id == semaphore.id)
    #expect(try opened.value == 1)
    #expect(semaphore.key != .private)
    #expect(announcement.hasPrefix("semaphore key: 0x") && announcement.count == 25)
  }

  @Test func agreedKey() throws {
    let key = try unusedKeyForExamples()
    let lock = try openServiceLock(at: key)
    defer { try? lock.remove() }
    #expect(lock.key == key)
    #expect(try lock.value == 1)
    // A second program gets the same lock, already initialised.
    let again = try openServiceLock(at: key)
    #expect(again.id == lock.id)
    // A lock whose mode grants more than 0o600 is refused.
    try lock.setMode(0o666)
    let error = expectIPCError(.permissions) { try openServiceLock(at: key) }
    #expect(error?.message.contains("0o666") == true)
  }

  @Test func ftokKey() throws {
    let directory = "/tmp"
    // Keys.md: ftok.
    let key = try IPCKey(path: directory, projectID: 42)
    // The weakness, shown: the key keeps the project id's 8 bits, 8 bits of the device number and
    // only 16 bits of the inode number (glibc's ftok), so files whose inode numbers differ by a
    // multiple of 65536 share a key.
    var info = stat()
    #expect(stat(directory, &info) == 0)
    let expected =
      (UInt32(42) << 24) | (UInt32(truncatingIfNeeded: info.st_dev) & 0xff) << 16
      | (UInt32(truncatingIfNeeded: info.st_ino) & 0xffff)
    #expect(UInt32(bitPattern: key.rawValue) == expected)
    #expect(try IPCKey(path: directory, projectID: 42) == key, "ftok is deterministic")
    expectIPCError(.invalidArgument) { try IPCKey(path: directory, projectID: 256) }
    expectIPCError(.existential) { try IPCKey(path: "/nonexistent/sysvipc-docs", projectID: 1) }
  }

  @Test func privateKey() throws {
    // Keys.md: IPCKey.private.
    let scratch = try SysVIPC.Semaphore(key: .private, flags: .create)
    defer { try? scratch.remove() }
    // No key opens it; hand scratch.id to the processes that should use it.
    let sameSemaphore = try SysVIPC.Semaphore(id: scratch.id)
    #expect(sameSemaphore.id == scratch.id)
    #expect(scratch.key == .private)
    expectIPCError(.invalidArgument) { try SysVIPC.Semaphore(key: .private) }
  }
}
