import Foundation
import SysVIPC

/// A demo's `params.txt`: `NAME=value` lines, `#` starting a comment, as the reference's demos
/// read it. PERMISSIONS is octal; the other values are decimal.
public struct DemoParams: Sendable {
  /// Every `NAME=value` line, by upper-cased name.
  public var values: [String: Int]

  /// Reads `path`; prints the problem and exits with status 2 when it cannot.
  public static func readOrExit(_ path: String) -> DemoParams {
    do {
      return try DemoParams(path: path)
    } catch {
      FileHandle.standardError.write(Data("\(path): \(error)\n".utf8))
      exit(2)
    }
  }

  /// Reads the file at `path`; throws when it is missing or a line is not `NAME=number`.
  public init(path: String) throws {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    values = [:]
    for rawLine in text.split(whereSeparator: \.isNewline) {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") { continue }
      let parts = line.split(separator: "=", maxSplits: 1).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      // A line of only "=" splits into nothing: check the count before reading a part.
      guard parts.count == 2, !parts[0].isEmpty,
        let value = Int(parts[1], radix: parts[0].uppercased() == "PERMISSIONS" ? 8 : 10)
      else { throw ParamsError(description: "not NAME=number: \(line)") }
      let name = parts[0].uppercased()
      values[name] = value
    }
  }

  /// The value of `name`, or `value` when the file has none; throws when both are missing.
  public func int(_ name: String, default value: Int? = nil) throws -> Int {
    guard let result = values[name] ?? value else {
      throw ParamsError(description: "\(name) is missing")
    }
    return result
  }

  /// ITERATIONS: how many rounds the two sides talk.
  public var iterations: Int { get throws { try int("ITERATIONS") } }
  /// LIVE_DANGEROUSLY (default 0): talk without the semaphore.
  public var liveDangerously: Bool { get throws { try int("LIVE_DANGEROUSLY", default: 0) != 0 } }
  /// KEY: the key of the demo's objects (decimal, within `key_t`).
  public var key: IPCKey {
    get throws {
      let value = try int("KEY")
      guard let key = Int32(exactly: value) else {
        throw ParamsError(description: "KEY=\(value) does not fit a key_t")
      }
      return IPCKey(rawValue: key)
    }
  }
  /// PERMISSIONS (octal, default 0600): the mode of the objects the premise creates.
  public var permissions: IPCPermissions {
    get throws {
      let value = try int("PERMISSIONS", default: 0o600)
      guard let mode = UInt32(exactly: value), mode <= 0o777 else {
        throw ParamsError(
          description: "PERMISSIONS=\(String(value, radix: 8)) is not a mode (0...0777)")
      }
      return IPCPermissions(rawValue: mode)
    }
  }
  /// SHM_SIZE (default 4096): the segment's size in bytes.
  public var sharedMemorySize: Int { get throws { try int("SHM_SIZE", default: 4096) } }
}

/// A params.txt that cannot be used, and why.
public struct ParamsError: Error, CustomStringConvertible {
  /// What is wrong.
  public var description: String
}

/// The `main` of a premise/conclusion demo: `NAME premise|conclusion [params.txt]` runs the role
/// with the parameters and exits with its status (1 on an error, 2 on a usage error).
public func runConversation(
  _ name: String, premise: (DemoParams) throws -> Int32, conclusion: (DemoParams) throws -> Int32
) -> Never {
  let arguments = CommandLine.arguments.dropFirst()
  guard let role = arguments.first, role == "premise" || role == "conclusion" else {
    printError("usage: \(name) premise|conclusion [params.txt]")
    exit(2)
  }
  let params = DemoParams.readOrExit(arguments.dropFirst().first ?? "params.txt")
  do {
    exit(role == "premise" ? try premise(params) : try conclusion(params))
  } catch {
    printError("\(role): \(error)")
    exit(1)
  }
}
