import Foundation
// Fuzzes IPCKey(path:projectID:), ftok's input: the first byte picks the project number
// (0...255, and 256 and -1 beyond the range), the rest is the path. The key must be C's
// ftok of the same path, or the call must throw a clear error: never a trap.
import FuzzSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Paths the fuzzer can reach by a few mutations: existing files and directories.
let seeds = ["/", "/tmp", "/etc/hostname", "/proc/self", ".", "/dev/null"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFtok(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  guard let first = bytes.first else { return 0 }
  let projectID: Int32 = first == 0xFF ? 256 : first == 0xFE ? -1 : Int32(first)
  var path = String(decoding: bytes.dropFirst(), as: UTF8.self)
  if path.hasPrefix("@"), let index = path.dropFirst().first?.wholeNumberValue {
    path = seeds[index % seeds.count] + path.dropFirst(2)
  }
  do {
    let key = try IPCKey(path: path, projectID: projectID)
    check((1...255).contains(projectID), "projectID \(projectID) accepted")
    // FuzzRegressionTests.aPathWithANulByteIsRefusedNotCutShort: C would stop at the NUL.
    check(!path.utf8.contains(0), "a path with a NUL byte was cut short: \(path.debugDescription)")
    check(key.rawValue == ftok(path, projectID), "key \(key) is not ftok's")
  } catch {
    check(
      error.kind == .invalidArgument || error.kind == .existential
        || error.kind == .permissions || error.kind == .system,
      "\(error.kind): \(error)")
    check(!error.description.isEmpty, "an error without a message")
  }
  return 0
}
