// The values the `sysvipc` tool reads from its command line, parsed by plain functions that
// throw typed errors. Standard library only (no Foundation, no ArgumentParser), so that this
// file compiles alone: `swiftc -parse-as-library -sanitize=fuzzer,address` with a fuzz entry
// point. Every function either returns a value in range or throws; none traps on any input.

/// Why a command-line value was refused.
public struct ValueParseError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What was being read: `key`, `mode`, `size`, `duration` or `seconds`.
  public var what: String
  /// The text given (cut to 40 characters).
  public var text: String
  /// What is wrong with it.
  public var reason: String

  public init(_ what: String, _ text: some StringProtocol, _ reason: String) {
    self.what = what
    self.text = text.count > 40 ? String(text.prefix(40)) + "..." : String(text)
    self.reason = reason
  }

  public var description: String { "\(what) '\(text)': \(reason)" }
}

/// A key as `ipcs` prints it: decimal (`42`, `-7`) or hexadecimal (`0x2a`, up to 8 digits; a
/// value above `0x7fffffff` is the negative `key_t` with those bits).
public func parseKey(_ text: String) throws(ValueParseError) -> Int32 {
  let lower = text.lowercased()
  if lower.hasPrefix("0x") {
    let digits = lower.dropFirst(2)
    guard !digits.isEmpty, digits.count <= 8, let bits = UInt32(digits, radix: 16) else {
      throw ValueParseError("key", text, "not a hexadecimal key_t (0x and 1 to 8 hex digits)")
    }
    return Int32(bitPattern: bits)
  }
  guard let value = Int32(text) else {
    throw ValueParseError("key", text, "not a key_t (a 32-bit decimal number, or hex with 0x)")
  }
  return value
}

/// Permission bits in octal: `600`, `0600`, `0o600`; at most `0777`.
public func parseMode(_ text: String) throws(ValueParseError) -> UInt32 {
  var digits = Substring(text)
  if digits.hasPrefix("0o") { digits = digits.dropFirst(2) }
  guard !digits.isEmpty, digits.count <= 12, let bits = UInt32(digits, radix: 8) else {
    throw ValueParseError("mode", text, "not octal permission bits (such as 600)")
  }
  guard bits <= 0o777 else { throw ValueParseError("mode", text, "above 0777") }
  return bits
}

/// A size in bytes with the suffixes `ipcmk` accepts (util-linux's `strtosize`): `4096`,
/// `4K` or `4KiB` (4 × 1024), `4KB` (4 × 1000), likewise M, G, T, P, E, in either case, and a
/// decimal fraction such as `1.5M` (rounded down to a whole byte). The result fits an `Int`.
public func parseSize(_ text: String) throws(ValueParseError) -> Int {
  let bytes = Array(text.utf8)
  var index = 0
  func digits() -> ArraySlice<UInt8> {
    let start = index
    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
    return bytes[start..<index]
  }
  let whole = digits()
  var fraction: ArraySlice<UInt8> = []
  if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
    index += 1
    fraction = digits()
    guard !fraction.isEmpty else { throw ValueParseError("size", text, "no digits after '.'") }
  }
  guard !whole.isEmpty else {
    throw ValueParseError("size", text, "not a size (a number, optionally with K, M, G, ...)")
  }
  let suffix = String(decoding: bytes[index...], as: UTF8.self)
  var power = 0
  var base = 1024
  if !suffix.isEmpty {
    let units = Array("KMGTPE")
    guard let letter = suffix.first?.uppercased().first, let found = units.firstIndex(of: letter)
    else {
      throw ValueParseError(
        "size", text, "unknown suffix '\(suffix)' (K, M, G, T, P or E; KiB = 1024, KB = 1000)")
    }
    power = found + 1
    switch suffix.dropFirst().lowercased() {
    case "": base = 1024
    case "ib": base = 1024
    case "b": base = 1000
    default:
      throw ValueParseError(
        "size", text, "unknown suffix '\(suffix)' (K, M, G, T, P or E; KiB = 1024, KB = 1000)")
    }
  } else if !fraction.isEmpty {
    throw ValueParseError("size", text, "a fraction of a byte")
  }
  let tooLarge = ValueParseError("size", text, "too large (more than \(Int.max) bytes)")
  var multiplier = 1
  for _ in 0..<power {
    let (next, overflow) = multiplier.multipliedReportingOverflow(by: base)
    if overflow { throw tooLarge }
    multiplier = next
  }
  var value = 0
  for digit in whole {
    let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
    let (next, overflow2) = shifted.addingReportingOverflow(Int(digit - 0x30))
    if overflow1 || overflow2 { throw tooLarge }
    value = next
  }
  let (scaled, overflow) = value.multipliedReportingOverflow(by: multiplier)
  if overflow { throw tooLarge }
  // The fraction (its first 18 digits) times the multiplier, rounded down: the product needs
  // 128 bits; the quotient is below the multiplier, so it fits.
  var fractionValue: UInt64 = 0
  var denominator: UInt64 = 1
  for digit in fraction.prefix(18) {
    fractionValue = fractionValue * 10 + UInt64(digit - 0x30)
    denominator *= 10
  }
  let product = UInt64(multiplier).multipliedFullWidth(by: fractionValue)
  let extra = Int(denominator.dividingFullWidth(product).quotient)
  let (total, overflowTotal) = scaled.addingReportingOverflow(extra)
  if overflowTotal { throw tooLarge }
  return total
}

/// A duration such as `30s`, `10m`, `2h`, `1d`, or parts of them together (`1h30m`); a bare
/// number is seconds. Whole units only; the total is at most 100 years.
public func parseDuration(_ text: String) throws(ValueParseError) -> Duration {
  let bytes = Array(text.utf8)
  guard !bytes.isEmpty else {
    throw ValueParseError("duration", text, "empty (give a number and s, m, h or d: 30s, 2h)")
  }
  let limit: Int64 = 100 * 365 * 86_400
  let tooLong = ValueParseError("duration", text, "longer than 100 years")
  var total: Int64 = 0
  var index = 0
  while index < bytes.count {
    var value: Int64 = 0
    let start = index
    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
      value = value * 10 + Int64(bytes[index] - 0x30)
      if value > limit { throw tooLong }
      index += 1
    }
    guard index > start else {
      throw ValueParseError("duration", text, "expected a number (such as 30s, 10m, 2h, 1d)")
    }
    var unit: Int64 = 1
    if index < bytes.count {
      switch bytes[index] {
      case UInt8(ascii: "s"): unit = 1
      case UInt8(ascii: "m"): unit = 60
      case UInt8(ascii: "h"): unit = 3600
      case UInt8(ascii: "d"): unit = 86_400
      default:
        throw ValueParseError("duration", text, "unknown unit (s, m, h or d)")
      }
      index += 1
    } else if start > 0 {
      throw ValueParseError("duration", text, "a unit after every number (s, m, h or d)")
    }
    total += value * unit
    if total > limit { throw tooLong }
  }
  return .seconds(total)
}

/// A timeout in seconds, with a fraction: `2`, `0.25`. Not negative, and at most 100 years.
public func parseSeconds(_ text: String) throws(ValueParseError) -> Duration {
  guard let seconds = Double(text), seconds.isFinite else {
    throw ValueParseError("seconds", text, "not a number of seconds (such as 2 or 0.25)")
  }
  guard seconds >= 0 else { throw ValueParseError("seconds", text, "negative") }
  guard seconds <= 100 * 365 * 86_400 else {
    throw ValueParseError("seconds", text, "longer than 100 years")
  }
  return .nanoseconds(Int64(seconds * 1e9))
}
