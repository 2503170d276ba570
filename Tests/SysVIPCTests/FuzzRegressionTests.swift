import CSysVIPC
import Foundation
import Testing

@testable import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Every input with which a fuzz target (Fuzz/, Scripts/fuzz.sh) found a defect, replayed as
/// a test. A defect not fixed yet is a known issue here (and skipped by its fuzz target, so
/// that the fuzzer looks for new ones): once it is fixed, `withKnownIssue` fails, saying the
/// issue was not recorded; then make it a plain test and remove the fuzz target's skip.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
  /// fuzz-status: a semid_ds whose sem_nsems does not fit an Int (input 0x88 0xff…) trapped
  /// in `IPCObjectInfo(semaphore:)`: fixed by clamping, as the other counts were.
  @Test func aSemaphoreCountBeyondIntDecodesWithoutTrapping() {
    var status = csysvipc_sem_status()
    status.nsems = .max
    status.perm.mode = 0o7777
    let info = IPCObjectInfo(semaphore: 7, status)
    #expect(info.semaphoreCount == Int.max)
    #expect(info.mode.rawValue == 0o777)
    var shm = csysvipc_shm_status()
    (shm.size, shm.nattch) = (.max, .max)
    let segment = IPCObjectInfo(sharedMemory: 7, shm)
    #expect(segment.size == Int.max && segment.attachCount == Int.max)
  }

  /// fuzz-ftok: a path with a NUL byte was cut at the NUL by the C call, so
  /// `IPCKey(path: ".\0\0\0", projectID: 0xDB)` gave the key of "." instead of refusing the
  /// path (found at the same time by lane core's issue 18 item 7, fixed there).
  @Test func aPathWithANulByteIsRefusedNotCutShort() {
    expectIPCError(.invalidArgument) { try IPCKey(path: ".\0\0\0", projectID: 0xDB) }
    expectIPCError(.invalidArgument) { try IPCKey(path: "/tmp\0/no/such/file", projectID: 1) }
    // The same paths without the NUL: the first is ".", the second does not exist.
    #expect(throws: Never.self) { try IPCKey(path: ".", projectID: 0xDB) }
    expectIPCError(.existential) { try IPCKey(path: "/tmp/no/such/file", projectID: 1) }
  }

  /// fuzz-params: params.txt lines that trap the demos' reader (Sources/ProgramSupport/Params.swift)
  /// instead of a clear error: a line of only "=" (`parts[0]` out of range), and a
  /// PERMISSIONS that does not fit a UInt32 (`UInt32(-1)`). Run through the sem_and_shm demo,
  /// which must exit with a message (status 1 or 2), not crash (fixed: checked before use).
  @Test(arguments: ["=", "===========", "PERMISSIONS=-1", "PERMISSIONS=77777777777777"])
  func aParamsLineThatTrapsTheDemos(_ line: String) async throws {
    let key = try unusedKey()
    let directory = try DemoDirectory(params: [])
    defer {
      directory.remove()
      removeObjects(withKey: key)
    }
    try "ITERATIONS=1\nKEY=\(key.rawValue)\n\(line)\n".write(
      toFile: directory.path + "/params.txt", atomically: true, encoding: .utf8)
    let outcome = try await LaunchedProcess.run(
      builtProduct("sem_and_shm"), ["premise"], directory: directory.path)
    #expect(outcome.status == 1 || outcome.status == 2, "\(outcome)")
    #expect(!outcome.errors.isEmpty, "a message says what is wrong: \(outcome)")
    #expect(try objects(withKey: key).isEmpty, "nothing created")
  }
}
