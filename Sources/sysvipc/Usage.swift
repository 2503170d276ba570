import ArgumentParser
import Foundation
import SysVIPC

extension SysVIPCTool {
  struct Limits: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the kernel's System V IPC limits (IPC_INFO), with how much is in use.",
      discussion: """
        As `lsipc -g`: each limit, and for those that count something (queues, segments, \
        shared memory pages, semaphore sets, semaphores) how much of it is in use now and the \
        percentage. Limits and usage are those of the caller's IPC namespace.

        --json prints {"schemaVersion": \(jsonSchemaVersion), "limits": {NAME: value or null}, \
        "usage": {...}, "resources": [{"name", "limit", "used", "percent", "description"}]}.
        """)

    @Flag(help: "Print JSON (see above).")
    var json = false

    func run() throws {
      let limits = try IPCSystem.limits()
      let usage = IPCUsage(try IPCSystem.objects(), pageSize: limits.pageSize)
      let resources = limits.all.map { name, value in
        Resource(name: name, limit: value, used: used(name, usage))
      }
      if json {
        try printJSON(
          LimitsReport(
            schemaVersion: jsonSchemaVersion, limits: Named(limits.all.map { ($0.key, $0.value) }),
            usage: usage, resources: resources))
        return
      }
      var rows = [["RESOURCE", "LIMIT", "USED", "USE%", "DESCRIPTION"]]
      for resource in resources {
        rows.append([
          resource.name, resource.limit.map(String.init) ?? "unknown",
          resource.used.map(String.init) ?? "-",
          resource.percent.map { String(format: "%.2f%%", $0) } ?? "-", resource.description,
        ])
      }
      printColumns(rows)
    }

    /// What is in use of the limit `name`, where it counts something.
    private func used(_ name: String, _ usage: IPCUsage) -> Int? {
      switch name {
      case "msgmni": usage.messageQueues
      case "semmni": usage.semaphoreSets
      case "semmns": usage.semaphores
      case "shmmni": usage.sharedMemorySegments
      case "shmall": usage.sharedMemoryPages
      default: nil
      }
    }
  }

  struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print how many objects of each kind exist and what they hold (`ipcs -u`).",
      discussion: """
        --json prints {"schemaVersion": \(jsonSchemaVersion), "usage": {semaphoreSets, \
        semaphores, sharedMemorySegments, sharedMemoryPages, sharedMemoryBytes, \
        messageQueues, messages, messageBytes}}.
        """)

    @Flag(help: "Exact sizes in bytes instead of human ones.")
    var bytes = false

    @Flag(help: "Print JSON (see above).")
    var json = false

    func run() throws {
      let usage = try IPCSystem.usage()
      if json {
        try printJSON(SummaryReport(schemaVersion: jsonSchemaVersion, usage: usage))
        return
      }
      func plural(_ count: Int, _ word: String) -> String {
        "\(count) \(word)\(count == 1 ? "" : "s")"
      }
      printColumns([
        ["KIND", "OBJECTS", "IN USE"],
        ["sem", String(usage.semaphoreSets), plural(usage.semaphores, "semaphore")],
        [
          "shm", String(usage.sharedMemorySegments),
          plural(usage.sharedMemoryPages, "page") + ", "
            + formatBytes(usage.sharedMemoryBytes, exact: bytes),
        ],
        [
          "mq", String(usage.messageQueues),
          plural(usage.messages, "message") + ", " + formatBytes(usage.messageBytes, exact: bytes),
        ],
      ])
    }
  }
}

/// One row of `limits`.
struct Resource: Encodable {
  var name: String
  var limit: Int?
  var used: Int?
  var percent: Double? {
    guard let used, let limit, limit > 0 else { return nil }
    return Double(used) * 100 / Double(limit)
  }
  var description: String { Self.descriptions[name] ?? "" }

  static let descriptions: [String: String] = [
    "msgmax": "largest message, bytes",
    "msgmnb": "default largest queue, bytes",
    "msgmni": "most message queues",
    "semmsl": "most semaphores in a set",
    "semmns": "most semaphores in all",
    "semopm": "most operations in one semop",
    "semmni": "most semaphore sets",
    "semvmx": "largest semaphore value",
    "shmmax": "largest segment, bytes",
    "shmall": "most shared memory in all, pages",
    "shmmni": "most segments",
    "pageSize": "page size, bytes",
  ]

  enum CodingKeys: String, CodingKey { case name, limit, used, percent, description }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(name, forKey: .name)
    try container.encode(limit, forKey: .limit)
    try container.encode(used, forKey: .used)
    try container.encode(percent, forKey: .percent)
    try container.encode(description, forKey: .description)
  }
}

extension IPCUsage: Encodable {
  enum CodingKeys: String, CodingKey {
    case semaphoreSets, semaphores, sharedMemorySegments, sharedMemoryPages, sharedMemoryBytes
    case messageQueues, messages, messageBytes
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(semaphoreSets, forKey: .semaphoreSets)
    try container.encode(semaphores, forKey: .semaphores)
    try container.encode(sharedMemorySegments, forKey: .sharedMemorySegments)
    try container.encode(sharedMemoryPages, forKey: .sharedMemoryPages)
    try container.encode(sharedMemoryBytes, forKey: .sharedMemoryBytes)
    try container.encode(messageQueues, forKey: .messageQueues)
    try container.encode(messages, forKey: .messages)
    try container.encode(messageBytes, forKey: .messageBytes)
  }
}

struct LimitsReport: Encodable {
  var schemaVersion: Int
  var limits: Named
  var usage: IPCUsage
  var resources: [Resource]
}

struct SummaryReport: Encodable {
  var schemaVersion: Int
  var usage: IPCUsage
}

/// Name-value pairs as one JSON object, in order; `null` where a value is unknown.
struct Named: Encodable {
  var values: [(String, Int?)]
  init(_ values: [(String, Int?)]) { self.values = values }

  struct Name: CodingKey {
    var stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: Name.self)
    for (name, value) in values {
      try container.encode(value, forKey: Name(stringValue: name))
    }
  }
}
