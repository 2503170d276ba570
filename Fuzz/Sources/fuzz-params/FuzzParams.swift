import Foundation
// Fuzzes the demos' params.txt reader (Demos/Support/Params.swift, linked here): arbitrary
// bytes as the file. Reading either succeeds or throws a ParamsError; every value the demos
// read then either comes out within its documented range or throws, never traps.
import FuzzSupport
import SysVIPC

/// One file per process, rewritten for each input (libFuzzer runs inputs one at a time).
let paramsPath = NSTemporaryDirectory() + "sysvipc-fuzz-params-\(getpid()).txt"

/// Inputs that hit a defect already found and reported, skipped so that the fuzzer looks for
/// new ones. Each has a regression test marked as a known issue in
/// Tests/SysVIPCTests/FuzzRegressionTests.swift, which fails once the defect is fixed: then
/// remove the entry here.
func knownFinding(_ text: String) -> Bool {
  text.split(whereSeparator: \.isNewline).contains {
    let line = $0.trimmingCharacters(in: .whitespaces)
    // A line of only "=" traps (split drops the empty parts: parts[0] is out of range).
    if !line.isEmpty && line.allSatisfy({ $0 == "=" }) { return true }
    // A PERMISSIONS that does not fit a UInt32 traps in `permissions` (UInt32(-1)).
    let parts = line.split(separator: "=", maxSplits: 1).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    guard parts.count == 2, parts[0].uppercased() == "PERMISSIONS",
      let value = Int(parts[1], radix: 8)
    else { return false }
    return UInt32(exactly: value) == nil
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParams(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  if knownFinding(String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)) {
    return 0
  }
  guard
    FileManager.default.createFile(
      atPath: paramsPath, contents: Data(bytes: data, count: size))
  else { fatalError("cannot write \(paramsPath)") }
  defer { unlink(paramsPath) }
  let params: DemoParams
  do {
    params = try DemoParams(path: paramsPath)
  } catch is ParamsError {
    return 0
  } catch {
    return 0  // not UTF-8: String(contentsOfFile:) refuses it
  }
  if let permissions = try? params.permissions {
    check(permissions.rawValue <= 0o7777, "PERMISSIONS \(permissions.rawValue)")
  }
  if let key = try? params.key {
    check(Int(key.rawValue) == params.values["KEY"], "KEY \(key)")
  }
  _ = try? params.iterations
  _ = try? params.liveDangerously
  _ = try? params.sharedMemorySize
  return 0
}
