import ArgumentParser
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

/// A key: decimal (`42`, `-7`) or hexadecimal (`0x2a`), as `ipcs` prints it.
struct KeyArgument: ExpressibleByArgument {
  let key: IPCKey

  init?(argument: String) {
    let text = argument.lowercased()
    if text.hasPrefix("0x"), let bits = UInt32(text.dropFirst(2), radix: 16) {
      key = IPCKey(rawValue: Int32(bitPattern: bits))
    } else if let value = Int32(text) {
      key = IPCKey(rawValue: value)
    } else {
      return nil
    }
  }
}

/// Permission bits in octal: `600`, `0600`, `0o600`.
struct ModeArgument: ExpressibleByArgument {
  let mode: IPCPermissions

  init?(argument: String) {
    var digits = Substring(argument)
    if digits.hasPrefix("0o") { digits = digits.dropFirst(2) }
    guard let bits = UInt32(digits, radix: 8), bits <= 0o777 else { return nil }
    mode = IPCPermissions(rawValue: bits)
  }

  init(_ mode: IPCPermissions) { self.mode = mode }

  var defaultValueDescription: String { String(mode.rawValue, radix: 8) }
}

/// A timeout in seconds, such as `2` or `0.25`.
struct SecondsArgument: ExpressibleByArgument {
  let duration: Duration

  init?(argument: String) {
    guard let seconds = Double(argument), seconds >= 0, seconds.isFinite,
      seconds < Double(Int64.max) / 1e9
    else { return nil }
    duration = .nanoseconds(Int64(seconds * 1e9))
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
}

extension Target {
  /// The id of the object named, looking a key up in the system's list (which needs no
  /// permission; the operation that follows checks it).
  func resolve(_ kind: IPCObjectKind) throws(IPCError) -> Int32 {
    if let id { return id }
    let key = self.key!.key
    guard key != .private else {
      throw IPCError(.invalidArgument, "key 0 (IPC_PRIVATE) names no single object; give its id")
    }
    guard let object = try IPCSystem.objects(of: kind).first(where: { $0.key == key }) else {
      throw IPCError(.existential, "no \(kind.name) with key \(key)")
    }
    return object.id
  }
}
