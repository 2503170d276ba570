// On Linux, Foundation re-exports Glibc, whose `Semaphore` is a typealias for
// `UnsafeMutablePointer<sem_t>`. This file imports both, as a user's file would, and shows the
// two remedies compile: a scoped import, and the module-qualified name.
import Foundation
import SysVIPC
import Testing

import struct SysVIPC.Semaphore

@Suite("Semaphore: importing Foundation too")
struct ImportBothTests {
  @Test func bareNameInTypePositionWithScopedImport() throws {
    let semaphore: Semaphore = try Semaphore(key: nil, flags: .createExclusive, initialValue: 1)
    defer { try? semaphore.remove() }
    let qualified: SysVIPC.Semaphore = semaphore
    #expect(try qualified.value == 1)
  }
}
