// Zero-copy access to shared memory, the reference's buffer_protocol demo in Swift: `read()`
// gives an independent copy; `withUnsafeMutableBytes` / `withMutableBytes` give a view of the
// segment itself, which writes through in both directions.
//
//   swift run buffer_protocol
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

let say = { (line: String) in print(line) }
var failures = 0

/// Checks a claim the demo makes, and says so.
@MainActor func check(_ claim: String, _ holds: Bool) {
  print("  \(holds ? "✓" : "✗ FAILED:") \(claim)")
  if !holds { failures += 1 }
}

let created = CreatedObjects(log: { printError("buffer_protocol: \($0)") })
do {
  let memory = try created.create { () throws(IPCError) in
    try SharedMemory(key: nil, flags: .createExclusive, size: SharedMemory.pageSize)
  }
  say("Created shared memory \(memory.id), \(memory.size) bytes; wrote the alphabet into it.")
  let alphabet = Array("abcdefghijklmnopqrstuvwxyz".utf8)
  try memory.write(alphabet)

  // A copy: Python's bytearray(memory).
  say("\nA copy (read) is independent of the segment:")
  var copy = try memory.read(count: alphabet.count)
  copy = copy.map { $0 == UInt8(ascii: "c") ? UInt8(ascii: "x") : $0 }
  check(
    "the copy changed: \(text(Array(copy.prefix(4))))", Array(copy.prefix(4)) == Array("abxd".utf8))
  check(
    "the segment did not: \(text(try memory.read(count: 4)))",
    try memory.read(count: 4) == Array("abcd".utf8))

  // A view: Python's memoryview(memory). No bytes are copied.
  try memory.write(alphabet)
  say("\nA view (withUnsafeMutableBytes) is the segment itself:")
  let slice = try memory.withUnsafeBytes { (view) throws(IPCError) in text(Array(view[3..<6])) }
  check("a slice of the view reads \"\(slice)\"", slice == "def")
  try memory.withUnsafeMutableBytes { (view) throws(IPCError) in view[4] = UInt8(ascii: "x") }
  check(
    "writing through the view changes the segment: \(text(try memory.read(count: 6)))",
    try memory.read(count: 6) == Array("abcdxf".utf8))
  try memory.write(Array("xxx".utf8))
  let seen = try memory.withUnsafeBytes { (view) throws(IPCError) in text(Array(view[0..<6])) }
  check("writing the segment shows through the view: \(seen)", seen == "xxxdxf")

  // The same with spans: bounds-checked, and they cannot escape the closure.
  try memory.withMutableBytes { (span) throws(IPCError) in
    span.storeBytes(of: UInt8(ascii: "!"), toByteOffset: 0, as: UInt8.self)
  }
  let first = try memory.withBytes { (span) throws(IPCError) in
    span.unsafeLoad(fromByteOffset: 0, as: UInt8.self)
  }
  check(
    "a MutableRawSpan writes, a RawSpan reads: \(Character(Unicode.Scalar(first)))",
    first == UInt8(ascii: "!"))

  try memory.detach()
  let (removed, errors) = created.removeAll()
  say("\nDetached and removed \(removed.joined(separator: ", ")).")
  for error in errors { printError("buffer_protocol: \(error)") }
  if !errors.isEmpty { failures += 1 }
} catch {
  created.removeAll()
  printError("buffer_protocol: \(error)")
  exit(1)
}
say(failures == 0 ? "Done!" : "\(failures) check(s) failed.")
exit(failures == 0 ? 0 : 1)
