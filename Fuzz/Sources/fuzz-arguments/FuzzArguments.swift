// Fuzzes the sysvipc tool's value parsers (Sources/CommandLineValues, linked here): the first
// byte picks the parser, the rest is the text. A parser either throws a ValueParseError or
// gives a value within its documented range, which it gives again from its canonical spelling;
// nothing traps.
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArguments(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  guard let selector = bytes.first else { return 0 }
  let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
  let century = Duration.seconds(100 * 365 * 86_400)
  do throws(ValueParseError) {
    switch selector % 5 {
    case 0:
      let key = try parseKey(text)
      check(try parseKey(String(key)) == key, "key \(text) → \(key)")
      let hex = "0x" + String(UInt32(bitPattern: key), radix: 16)
      check(try parseKey(hex) == key, "key \(text) → \(key) → \(hex)")
    case 1:
      let mode = try parseMode(text)
      check(mode <= 0o777, "mode \(text) → \(mode)")
      check(try parseMode(String(mode, radix: 8)) == mode, "mode \(text) → \(mode)")
    case 2:
      let bytes = try parseSize(text)
      check(bytes >= 0, "size \(text) → \(bytes)")
      check(try parseSize(String(bytes)) == bytes, "size \(text) → \(bytes)")
    case 3:
      let duration = try parseDuration(text)
      check(duration >= .zero && duration <= century, "duration \(text) → \(duration)")
      let seconds = duration.components.seconds
      check(try parseDuration("\(seconds)s") == duration, "duration \(text) → \(duration)")
    default:
      let duration = try parseSeconds(text)
      check(duration >= .zero && duration <= century, "seconds \(text) → \(duration)")
    }
  } catch {
    check(!error.reason.isEmpty && !error.what.isEmpty, "an error without a reason: \(text)")
  }
  return 0
}
