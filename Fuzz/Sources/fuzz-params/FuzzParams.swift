import Foundation
// Fuzzes the demos' params.txt reader (Sources/ProgramSupport/Params.swift, linked here): arbitrary
// bytes as the file. Reading either succeeds or throws a ParamsError; every value the demos
// read then either comes out within its documented range or throws, never traps.
import FuzzSupport
import SysVIPC

/// One file per process, rewritten for each input (libFuzzer runs inputs one at a time).
let paramsPath = NSTemporaryDirectory() + "sysvipc-fuzz-params-\(getpid()).txt"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParams(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
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
    check(permissions.rawValue <= 0o777, "PERMISSIONS \(permissions.rawValue)")
  }
  if let key = try? params.key {
    check(Int(key.rawValue) == params.values["KEY"], "KEY \(key)")
  }
  _ = try? params.iterations
  _ = try? params.liveDangerously
  _ = try? params.sharedMemorySize
  return 0
}
