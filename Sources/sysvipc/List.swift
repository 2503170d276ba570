import ArgumentParser
import Foundation
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The version of the JSON that `list`, `info`, `limits` and `summary` print: raised when a
/// member changes meaning or goes; new members may appear without it.
let jsonSchemaVersion = 1

/// Which objects `list` and `remove` work on.
struct ObjectFilter: ParsableArguments {
  @Option(name: .shortAndLong, help: "Only objects of this kind: sem, shm or mq (repeatable).")
  var kind: [KindArgument] = []

  @Flag(help: "Only the caller's objects (owned or created by the effective user).")
  var mine = false

  @Option(help: "Only objects owned by this user (a name or a uid).")
  var owner: String?

  @Option(name: .customLong("key"), help: "Only the object(s) with this key (repeatable).")
  var keys: [KeyArgument] = []

  @Flag(
    help: """
      Only stale objects: no process known to have used them alive, nothing attached or \
      waiting, and unchanged for --older-than (see `sysvipc help list`).
      """)
  var stale = false

  @Option(
    help: """
      With --stale: how long an object must have been unchanged: 30s, 10m, 2h, 1d. Objects \
      that no process is recorded using (a queue nobody has used yet) are told apart from \
      leftovers only by this age.
      """)
  var olderThan: DurationArgument?

  /// --stale's age when --older-than is not given.
  static let defaultAge = Duration.seconds(3600)

  func validate() throws {
    if olderThan != nil && !stale { throw ValidationError("--older-than goes with --stale.") }
    if let owner, ownerID(owner) == nil {
      throw ValidationError("--owner '\(owner)': no such user (give a name or a uid).")
    }
  }

  var kinds: [IPCObjectKind] {
    kind.isEmpty
      ? IPCObjectKind.allCases : IPCObjectKind.allCases.filter { kind.map(\.kind).contains($0) }
  }

  /// The objects that pass every filter, with the stale rule's answer when --stale is given.
  func objects(kinds: [IPCObjectKind]? = nil) throws(IPCError) -> [(
    IPCObjectInfo, IPCStaleness?
  )] {
    let me = geteuid()
    let ownerUID = owner.flatMap(ownerID)
    let wantedKeys = keys.map(\.key)
    let age = olderThan?.duration ?? Self.defaultAge
    let now = Date()
    var result: [(IPCObjectInfo, IPCStaleness?)] = []
    for kind in kinds ?? self.kinds {
      for object in try IPCSystem.objects(of: kind) {
        if mine && object.uid != me && object.cuid != me { continue }
        if let ownerUID, object.uid != ownerUID { continue }
        if !wantedKeys.isEmpty && !wantedKeys.contains(object.key) { continue }
        if stale {
          let answer = IPCSystem.staleness(of: object, olderThan: age, now: now)
          if answer.isStale { result.append((object, answer)) }
        } else {
          result.append((object, nil))
        }
      }
    }
    return result
  }
}

/// A user name or a numeric uid.
func ownerID(_ text: String) -> uid_t? {
  if let number = UInt32(text) { return number }
  return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    guard getpwnam_r(text, &entry, buffer.baseAddress!, buffer.count, &result) == 0,
      result != nil
    else { return nil }
    return entry.pw_uid
  }
}

extension SysVIPCTool {
  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List System V objects, as `ipcs` and `lsipc` do; filter them; find stale ones.",
      discussion: """
        Objects are listed whatever their permissions. Default columns: \
        \(ListColumn.defaults.map(\.rawValue).joined(separator: " ")); with --stale also \
        IDLE and WHY. All columns (for --columns): \
        \(ListColumn.allCases.map(\.rawValue).joined(separator: " ")).

        \(ListColumn.allCases.map { "\($0.rawValue): \($0.help)" }.joined(separator: "\n"))

        Stale: every process the kernel names as a user of the object is gone (shared memory: \
        creator and last attach/detach pids; queues: last sender and receiver; semaphore sets: \
        each semaphore's last pid), nothing uses it (no attachment, no process waiting on a \
        semaphore), and its last change or use (ctime, otime, atime, dtime, stime, rtime) is \
        at least --older-than ago (default 1h). The rule cannot see pid reuse (a dead user's \
        pid reused makes an object look alive), processes outside the caller's pid namespace \
        (inside a container, the host's processes read as pid 0, "never"), a queue's creator, \
        or a process blocked in msgrcv: --older-than covers those.

        --json prints {"schemaVersion": \(jsonSchemaVersion), "objects": [...]} with every \
        field of every object, whatever --columns says; with --stale each object also has \
        "stale" (reason, processIDs, idleSeconds).
        """)

    @OptionGroup var filter: ObjectFilter

    @Option(help: "The columns to print, comma-separated (see above).")
    var columns: String?

    @Flag(help: "Do not print the header line.")
    var noHeadings = false

    @Flag(
      help: "No alignment: one space between cells, spaces inside a cell as \\x20, '-' for empty.")
    var raw = false

    @Flag(help: "Exact sizes in bytes instead of human ones (KiB, MiB, ...).")
    var bytes = false

    @Flag(help: "Print JSON (see above).")
    var json = false

    func validate() throws {
      _ = try chosenColumns()
    }

    private func chosenColumns() throws -> [ListColumn] {
      guard let columns else {
        return ListColumn.defaults + (filter.stale ? [.idle, .why] : [])
      }
      return try columns.split(separator: ",").map { name in
        guard
          let column = ListColumn(rawValue: name.trimmingCharacters(in: .whitespaces).uppercased())
        else {
          throw ValidationError(
            "--columns: unknown column '\(name)' (known: "
              + ListColumn.allCases.map(\.rawValue).joined(separator: ",") + ")")
        }
        return column
      }
    }

    func run() throws {
      let found = try filter.objects()
      if json {
        try printJSON(
          ListReport(
            schemaVersion: jsonSchemaVersion,
            objects: found.map { object, staleness in
              var report = ObjectReport(object)
              report.stale = staleness.map(StaleReport.init)
              return report
            }))
        return
      }
      let columns = try chosenColumns()
      var rows: [[String]] = noHeadings ? [] : [columns.map(\.rawValue)]
      let now = Date()
      for (object, staleness) in found {
        rows.append(
          columns.map { column in
            column.value(object, staleness, exact: bytes, now: now)
          })
      }
      if raw {
        for row in rows {
          print(
            row.map { $0.isEmpty ? "-" : $0.replacingOccurrences(of: " ", with: "\\x20") }
              .joined(separator: " "))
        }
      } else {
        printColumns(rows)
      }
    }
  }
}

/// A column of `list`.
enum ListColumn: String, CaseIterable {
  case kind = "KIND", key = "KEY", id = "ID", owner = "OWNER", mode = "MODE", size = "SIZE"
  case attach = "ATTACH", cpid = "CPID", lpid = "LPID", status = "STATUS"
  case uid = "UID", gid = "GID", cuid = "CUID", cgid = "CGID", creator = "CREATOR"
  case nsems = "NSEMS", used = "USED", messages = "MSGS", qbytes = "QBYTES"
  case lspid = "LSPID", lrpid = "LRPID"
  case ctime = "CTIME", otime = "OTIME", atime = "ATIME", dtime = "DTIME", stime = "STIME"
  case rtime = "RTIME", active = "ACTIVE", idle = "IDLE", why = "WHY"

  static let defaults: [ListColumn] = [
    .kind, .key, .id, .owner, .mode, .size, .attach, .cpid, .lpid, .status,
  ]

  var help: String {
    switch self {
    case .kind: "sem, shm or mq"
    case .key: "the key, in hex"
    case .id: "the id"
    case .owner: "the owner's name (uid)"
    case .mode: "permission bits, octal"
    case .size: "semaphores in a set; bytes of a segment; messages and bytes on a queue"
    case .attach: "attachments of a segment (shm_nattch)"
    case .cpid: "creator of a segment (shm_cpid)"
    case .lpid: "last to attach/detach a segment (shm_lpid); last sender/receiver of a queue"
    case .status: "\"dest\": a removed segment alive until its last detach"
    case .uid: "the owner's uid"
    case .gid: "the owner's gid"
    case .cuid: "the creator's uid"
    case .cgid: "the creator's gid"
    case .creator: "the creator's name (cuid)"
    case .nsems: "semaphores in the set (sem_nsems)"
    case .used: "bytes in use: a segment's size, a queue's message bytes (msg_cbytes)"
    case .messages: "messages on a queue (msg_qnum)"
    case .qbytes: "the most bytes a queue may hold (msg_qbytes)"
    case .lspid: "the last sender to a queue (msg_lspid)"
    case .lrpid: "the last receiver from a queue (msg_lrpid)"
    case .ctime: "created, or last changed by IPC_SET (*_ctime)"
    case .otime: "last semop (sem_otime)"
    case .atime: "last attach (shm_atime)"
    case .dtime: "last detach (shm_dtime)"
    case .stime: "last send (msg_stime)"
    case .rtime: "last receive (msg_rtime)"
    case .active: "the latest of the times above"
    case .idle: "time since ACTIVE"
    case .why: "with --stale: why the object is stale"
    }
  }

  func value(_ object: IPCObjectInfo, _ staleness: IPCStaleness?, exact: Bool, now: Date)
    -> String
  {
    func number(_ value: (some BinaryInteger)?) -> String { value.map { "\($0)" } ?? "-" }
    func pid(_ value: pid_t?) -> String { value.map(String.init) ?? "-" }
    func size(_ value: Int?) -> String { value.map { formatBytes($0, exact: exact) } ?? "-" }
    func time(_ date: Date?) -> String { date.map(formatTime) ?? "-" }
    switch self {
    case .kind: return KindArgument.name(object.kind)
    case .key: return object.key.description
    case .id: return String(object.id)
    case .owner: return userName(object.uid)
    case .mode: return octal(object.mode)
    case .size:
      switch object.kind {
      case .semaphore:
        let count = object.semaphoreCount ?? 0
        return "\(count) sem\(count == 1 ? "" : "s")"
      case .sharedMemory: return size(object.size)
      case .messageQueue:
        let count = object.messageCount ?? 0
        return "\(count) msg\(count == 1 ? "" : "s"), \(size(object.messageBytes))"
      }
    case .attach: return number(object.attachCount)
    case .cpid: return pid(object.creatorPID)
    case .lpid:
      if object.kind == .messageQueue {
        return "\(object.lastSendPID ?? 0)/\(object.lastReceivePID ?? 0)"
      }
      return pid(object.lastPID)
    case .status: return object.isMarkedForRemoval ? "dest" : ""
    case .uid: return String(object.uid)
    case .gid: return String(object.gid)
    case .cuid: return String(object.cuid)
    case .cgid: return String(object.cgid)
    case .creator: return userName(object.cuid)
    case .nsems: return number(object.semaphoreCount)
    case .used: return size(object.kind == .sharedMemory ? object.size : object.messageBytes)
    case .messages: return number(object.messageCount)
    case .qbytes: return size(object.maxQueueBytes)
    case .lspid: return pid(object.lastSendPID)
    case .lrpid: return pid(object.lastReceivePID)
    case .ctime: return time(object.lastChangeTime)
    case .otime: return time(object.lastOperationTime)
    case .atime: return time(object.lastAttachTime)
    case .dtime: return time(object.lastDetachTime)
    case .stime: return time(object.lastSendTime)
    case .rtime: return time(object.lastReceiveTime)
    case .active: return time(object.lastActivityTime)
    case .idle:
      guard let active = object.lastActivityTime else { return "-" }
      return formatAge(max(0, now.timeIntervalSince(active)))
    case .why: return staleness?.reason ?? ""
    }
  }
}

/// `4 KiB`, `1.5 MiB` (one decimal, dropped when it is 0), or `4096 B` with `exact`.
func formatBytes(_ value: Int, exact: Bool) -> String {
  if exact || value < 1024 { return "\(value) B" }
  var amount = Double(value)
  var unit = 0
  let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
  while amount >= 1024 && unit < units.count - 1 {
    amount /= 1024
    unit += 1
  }
  let tenths = (amount * 10).rounded(.down) / 10
  let text =
    tenths == tenths.rounded(.down) ? String(Int(tenths)) : String(format: "%.1f", tenths)
  return "\(text) \(units[unit])"
}

/// An ISO 8601 time in UTC, to the second.
func formatTime(_ date: Date) -> String {
  date.formatted(.iso8601)
}

/// `2h 5m`, `42s`: the two largest units of `seconds`.
func formatAge(_ seconds: Double) -> String {
  var rest = Int(seconds)
  var parts: [String] = []
  for (name, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]
  where rest >= size || (name == "s" && parts.isEmpty) {
    parts.append("\(rest / size)\(name)")
    rest %= size
    if parts.count == 2 { break }
  }
  return parts.joined(separator: " ")
}

/// `list --json`.
struct ListReport: Encodable {
  var schemaVersion: Int
  var objects: [ObjectReport]
}

/// The stale rule's answer in JSON.
struct StaleReport: Encodable {
  var reason: String
  var processIDs: [Int32]
  var idleSeconds: Int64?

  init(_ staleness: IPCStaleness) {
    reason = staleness.reason
    processIDs = staleness.processIDs
    idleSeconds = staleness.idleTime?.components.seconds
  }
}
