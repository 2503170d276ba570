import ArgumentParser
import CommandLineValues
import SysVIPC

/// KIND on the command line: `sem`, `shm`, `mq`, or their long names.
struct KindArgument: ExpressibleByArgument, Hashable {
  let kind: IPCObjectKind

  init?(argument: String) {
    switch argument.lowercased() {
    case "sem", "semaphore", "semaphores": kind = .semaphore
    case "shm", "shared-memory", "sharedmemory", "memory": kind = .sharedMemory
    case "mq", "msg", "queue", "message-queue", "messagequeue": kind = .messageQueue
    default: return nil
    }
  }

  static var allValueStrings: [String] { ["sem", "shm", "mq"] }

  /// The short name, as KIND is written.
  static func name(_ kind: IPCObjectKind) -> String {
    switch kind {
    case .semaphore: "sem"
    case .sharedMemory: "shm"
    case .messageQueue: "mq"
    }
  }
}

/// A key: decimal (`42`, `-7`) or hexadecimal (`0x2a`), as `ipcs` prints it (``parseKey(_:)``).
struct KeyArgument: ExpressibleByArgument {
  let key: IPCKey

  init?(argument: String) {
    guard let value = try? parseKey(argument) else { return nil }
    key = IPCKey(rawValue: value)
  }
}

/// Permission bits in octal: `600`, `0600`, `0o600` (``parseMode(_:)``).
struct ModeArgument: ExpressibleByArgument {
  let mode: IPCPermissions

  init?(argument: String) {
    guard let bits = try? parseMode(argument) else { return nil }
    mode = IPCPermissions(rawValue: bits)
  }

  init(_ mode: IPCPermissions) { self.mode = mode }

  var defaultValueDescription: String { String(mode.rawValue, radix: 8) }
}

/// A timeout in seconds, such as `2` or `0.25` (``parseSeconds(_:)``).
struct SecondsArgument: ExpressibleByArgument {
  let duration: Duration

  init?(argument: String) {
    guard let duration = try? parseSeconds(argument) else { return nil }
    self.duration = duration
  }
}

/// A size in bytes, with `ipcmk`'s suffixes: `4096`, `4K`, `1MiB`, `1MB` (``parseSize(_:)``).
struct SizeArgument: ExpressibleByArgument {
  let bytes: Int

  init?(argument: String) {
    guard let bytes = try? parseSize(argument) else { return nil }
    self.bytes = bytes
  }
}

/// An age: `30s`, `10m`, `2h`, `1d` (``parseDuration(_:)``).
struct DurationArgument: ExpressibleByArgument {
  let duration: Duration

  init?(argument: String) {
    guard let duration = try? parseDuration(argument) else { return nil }
    self.duration = duration
  }
}

/// The object a command works on: an id, or `--key`.
struct Target: ParsableArguments {
  @Argument(help: "The object's id, as `sysvipc list` shows it.")
  var id: Int32?

  @Option(help: "Open the object by key instead of by id (decimal, or hex with 0x).")
  var key: KeyArgument?

  func validate() throws {
    switch (id, key) {
    case (nil, nil): throw ValidationError("Give the object's id, or --key.")
    case (.some, .some): throw ValidationError("Give the object's id or --key, not both.")
    default: break
    }
  }

  func resolve(_ kind: IPCObjectKind) throws(IPCError) -> Int32 {
    try ObjectName(id: id, key: key?.key).resolve(kind)
  }
}

/// The object and the text of `send` and `write`: `ID TEXT`, or `--key KEY TEXT`; the text is
/// left out with `--stdin`. One list of words, read after parsing: a positional id that only
/// some calls give would otherwise take the text's place.
struct TargetAndText: ParsableArguments {
  @Argument(
    help: ArgumentHelp(
      "The object's id (left out with --key), then the text (UTF-8; left out with --stdin).",
      valueName: "id> <text"))
  var words: [String] = []

  @Option(help: "Open the object by key instead of by id (decimal, or hex with 0x).")
  var key: KeyArgument?

  /// The object and the text, or why the words do not fit `--key` and `--stdin`.
  func split(stdin: Bool) throws(ValidationError) -> (ObjectName, String?) {
    var words = self.words
    var id: Int32?
    if key == nil {
      guard let first = words.first else {
        throw ValidationError("Give the object's id, or --key.")
      }
      guard let number = Int32(first) else {
        throw ValidationError("The id '\(first)' is not a number (use --key for a key).")
      }
      id = number
      words.removeFirst()
    }
    if stdin {
      guard words.isEmpty else {
        throw ValidationError(
          "Give the text or --stdin, not both (extra: \(words.joined(separator: " "))).")
      }
      return (ObjectName(id: id, key: key?.key), nil)
    }
    guard words.count == 1 else {
      throw ValidationError(
        words.isEmpty
          ? "Give the text, or --stdin."
          : "Give one text (quote it); found \(words.count) words\(key == nil ? " after the id" : "")."
      )
    }
    return (ObjectName(id: id, key: key?.key), words[0])
  }
}

/// An object named by id or by key.
struct ObjectName {
  var id: Int32?
  var key: IPCKey?

  /// The id of the object named, looking a key up in the system's list (which needs no
  /// permission; the operation that follows checks it).
  func resolve(_ kind: IPCObjectKind) throws(IPCError) -> Int32 {
    if let id { return id }
    guard let key else { throw IPCError(.invalidArgument, "give an id or a key") }
    return try objectID(kind, key: key)
  }
}

/// The id of the object of `kind` with `key`, from the system's list (no permission needed).
func objectID(_ kind: IPCObjectKind, key: IPCKey) throws(IPCError) -> Int32 {
  guard key != .private else {
    throw IPCError(.invalidArgument, "key 0 (IPC_PRIVATE) names no single object; give its id")
  }
  guard let object = try IPCSystem.objects(of: kind).first(where: { $0.key == key }) else {
    throw IPCError(.existential, "no \(kind.name) with key \(key)")
  }
  return object.id
}
