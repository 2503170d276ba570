import ArgumentParser
// Fuzzes the sysvipc tool's value parsers (Sources/sysvipc/Arguments.swift, linked here): the
// first byte picks the parser, the rest is the argument. A parser either refuses (nil) or
// gives a value within its documented range, which it must give again from its own
// canonical spelling; nothing traps.
import FuzzSupport
import SysVIPC

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArguments(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = UnsafeBufferPointer(start: data, count: size)
  guard let selector = bytes.first else { return 0 }
  let argument = String(decoding: bytes.dropFirst(), as: UTF8.self)
  switch selector % 4 {
  case 0:
    guard let parsed = KeyArgument(argument: argument) else { return 0 }
    let hex = "0x" + String(UInt32(bitPattern: parsed.key.rawValue), radix: 16)
    check(KeyArgument(argument: hex)?.key == parsed.key, "key \(argument) → \(parsed.key)")
    check(
      KeyArgument(argument: String(parsed.key.rawValue))?.key == parsed.key,
      "key \(argument) → \(parsed.key)")
  case 1:
    guard let parsed = ModeArgument(argument: argument) else { return 0 }
    check(parsed.mode.rawValue <= 0o777, "mode \(argument) → \(parsed.mode.rawValue)")
    let octal = String(parsed.mode.rawValue, radix: 8)
    check(ModeArgument(argument: octal)?.mode == parsed.mode, "mode \(argument)")
  case 2:
    guard let parsed = SecondsArgument(argument: argument) else { return 0 }
    check(parsed.duration >= .zero, "duration \(argument) → \(parsed.duration)")
  default:
    guard let parsed = KindArgument(argument: argument) else { return 0 }
    check(
      KindArgument(argument: KindArgument.name(parsed.kind))?.kind == parsed.kind,
      "kind \(argument)")
  }
  return 0
}
