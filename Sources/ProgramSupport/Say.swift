import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Prints `role@seconds: text` and flushes, as the reference's demos log: two processes share
/// the terminal.
public func say(_ role: String, _ text: String) {
  var now = timeval()
  gettimeofday(&now, nil)
  let micros = String(Int(now.tv_usec))
  let fraction = String(repeating: "0", count: max(0, 6 - micros.count)) + micros
  print("\(role)@\(now.tv_sec).\(fraction): \(text)")
  fflush(nil)
}

/// Writes a line to standard error.
public func printError(_ text: String) {
  fflush(nil)
  FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// The current time as C's `asctime` and Python's `time.asctime()` write it, without the
/// newline: `Sun Nov 29 12:45:18 2026`. The first message of the conversations.
public func asciiTime() -> String {
  var now = time(nil)
  var parts = tm()
  localtime_r(&now, &parts)
  return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
    let count = strftime(buffer.baseAddress!, 64, "%a %b %e %H:%M:%S %Y", &parts)
    return String(
      decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count), as: UTF8.self)
  }
}

/// Bytes as text, for logging.
public func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// This program's path, to start it again as a second process.
public func ownExecutable() -> String {
  if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
    return path
  }
  return Bundle.main.executablePath ?? CommandLine.arguments[0]
}
