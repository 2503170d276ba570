import ArgumentParser
import Foundation
import ProgramSupport
import SysVIPC

extension SysVIPCTool {
  struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print everything about one object.",
      discussion: "Needs read permission on the object (IPC_STAT).")

    @Argument(help: "The kind of object: sem, shm or mq.")
    var kind: KindArgument

    @OptionGroup var target: Target

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
      let id = try target.resolve(kind.kind)
      let object = try IPCSystem.object(kind.kind, id: id)
      var report = ObjectReport(object)
      if object.kind == .semaphore {
        report.values = try SemaphoreSet(id: id).values()
        if object.semaphoreCount == 1 {
          let status = try SysVIPC.Semaphore(id: id).status()
          report.lastPID = status.lastPID
          report.waitingForNonzero = status.waitingForNonzero
          report.waitingForZero = status.waitingForZero
        }
      }
      if json {
        report.schemaVersion = jsonSchemaVersion
        try printJSON(report)
      } else {
        printColumns(report.fields.map { [$0.0 + ":", $0.1] })
      }
    }
  }

}

/// `IPC_RMID` through the kind's own type.
func removeObject(_ kind: IPCObjectKind, id: Int32) throws(IPCError) {
  switch kind {
  case .semaphore: try SysVIPC.Semaphore.remove(id: id)
  case .sharedMemory: try SharedMemory.remove(id: id)
  case .messageQueue: try MessageQueue.remove(id: id)
  }
}

// MARK: - Output

/// One object for JSON and for `info`: the library's property names.
struct ObjectReport: Encodable {
  /// In `info --json` only: `list --json` states it once.
  var schemaVersion: Int?
  var kind: String
  var key: Int32
  var keyHex: String
  var id: Int32
  var mode: String
  var owner: String
  var uid: UInt32
  var gid: UInt32
  var cuid: UInt32
  var cgid: UInt32
  var lastChangeTime: Date?
  var semaphoreCount: Int?
  var lastOperationTime: Date?
  var values: [Int]?
  var lastPID: Int32?
  var waitingForNonzero: Int?
  var waitingForZero: Int?
  var size: Int?
  var attachCount: Int?
  var creatorPID: Int32?
  var lastAttachTime: Date?
  var lastDetachTime: Date?
  var isMarkedForRemoval: Bool?
  var messageCount: Int?
  var messageBytes: Int?
  var maxQueueBytes: Int?
  var lastSendPID: Int32?
  var lastReceivePID: Int32?
  var lastSendTime: Date?
  var lastReceiveTime: Date?
  var lastActivityTime: Date?
  /// With `list --stale`: why the object is stale.
  var stale: StaleReport?

  init(_ object: IPCObjectInfo) {
    kind = object.kind.rawValue
    key = object.key.rawValue
    keyHex = object.key.description
    id = object.id
    mode = octal(object.mode)
    owner = userName(object.uid)
    uid = object.uid
    gid = object.gid
    cuid = object.cuid
    cgid = object.cgid
    lastChangeTime = object.lastChangeTime
    semaphoreCount = object.semaphoreCount
    lastOperationTime = object.lastOperationTime
    size = object.size
    attachCount = object.attachCount
    creatorPID = object.creatorPID
    lastPID = object.lastPID
    lastAttachTime = object.lastAttachTime
    lastDetachTime = object.lastDetachTime
    isMarkedForRemoval = object.kind == .sharedMemory ? object.isMarkedForRemoval : nil
    messageCount = object.messageCount
    messageBytes = object.messageBytes
    maxQueueBytes = object.maxQueueBytes
    lastSendPID = object.lastSendPID
    lastReceivePID = object.lastReceivePID
    lastSendTime = object.lastSendTime
    lastReceiveTime = object.lastReceiveTime
    lastActivityTime = object.lastActivityTime
  }

  /// The fields that apply, in order, for `info`.
  var fields: [(String, String)] {
    func time(_ date: Date?) -> String { date.map { $0.formatted(.iso8601) } ?? "never" }
    var result: [(String, String)] = [
      ("kind", kind), ("id", String(id)), ("key", "\(keyHex) (\(key))"), ("mode", mode),
      ("owner", "\(owner) (uid \(uid), gid \(gid))"),
      ("creator", "\(userName(cuid)) (uid \(cuid), gid \(cgid))"),
      ("lastChangeTime", time(lastChangeTime)),
    ]
    func add(_ name: String, _ value: (some CustomStringConvertible)?) {
      if let value { result.append((name, value.description)) }
    }
    add("semaphoreCount", semaphoreCount)
    if semaphoreCount != nil { result.append(("lastOperationTime", time(lastOperationTime))) }
    if let values { result.append(("values", values.map(String.init).joined(separator: " "))) }
    add("waitingForNonzero", waitingForNonzero)
    add("waitingForZero", waitingForZero)
    add("size", size)
    add("attachCount", attachCount)
    add("creatorPID", creatorPID)
    add("lastPID", lastPID)
    if size != nil {
      result.append(("lastAttachTime", time(lastAttachTime)))
      result.append(("lastDetachTime", time(lastDetachTime)))
    }
    add("isMarkedForRemoval", isMarkedForRemoval)
    add("messageCount", messageCount)
    add("messageBytes", messageBytes)
    add("maxQueueBytes", maxQueueBytes)
    add("lastSendPID", lastSendPID)
    add("lastReceivePID", lastReceivePID)
    if messageCount != nil {
      result.append(("lastSendTime", time(lastSendTime)))
      result.append(("lastReceiveTime", time(lastReceiveTime)))
    }
    return result
  }
}

func printJSON(_ value: some Encodable) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  encoder.dateEncodingStrategy = .iso8601
  print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Left-aligned columns separated by two spaces; no trailing blanks.
func printColumns(_ rows: [[String]]) {
  guard let width = rows.map(\.count).max() else { return }
  var widths = [Int](repeating: 0, count: width)
  for row in rows {
    for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
  }
  for row in rows {
    var line = ""
    for (index, cell) in row.enumerated() {
      line += cell
      if index < row.count - 1 {
        line += String(repeating: " ", count: widths[index] - cell.count + 2)
      }
    }
    while line.last == " " { line.removeLast() }
    print(line)
  }
}

func octal(_ mode: IPCPermissions) -> String {
  let digits = String(mode.rawValue, radix: 8)
  return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// The user's name, or the number when it has none.
func userName(_ uid: uid_t) -> String {
  withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    guard getpwuid_r(uid, &entry, buffer.baseAddress!, buffer.count, &result) == 0,
      result != nil, let name = entry.pw_name
    else { return String(uid) }
    return String(cString: name)
  }
}
