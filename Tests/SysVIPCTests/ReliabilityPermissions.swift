import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One operation that nobody must be refused on a root-owned object.
struct Refusal: Sendable {
  /// The `rel-op` operation.
  var operation: String
  /// The object's mode: 0o600 (no access for others) or 0o644 (others may read, not write).
  var mode: IPCPermissions
  /// What the error message must name: the refusing call, or the reason.
  var mentions: String
  /// Whether the helper got an instance first, so that the operation itself was refused.
  var reachesOperation: Bool
}

/// The permission table (issue 7): kinds × operations × modes.
let refusals: [String: [Refusal]] = [
  "semaphore": [
    Refusal(operation: "open", mode: 0o600, mentions: "semget", reachesOperation: false),
    Refusal(operation: "acquire", mode: 0o600, mentions: "semop", reachesOperation: true),
    Refusal(operation: "release", mode: 0o600, mentions: "semop", reachesOperation: true),
    Refusal(operation: "value", mode: 0o600, mentions: "GETVAL", reachesOperation: true),
    Refusal(operation: "setValue", mode: 0o600, mentions: "SETVAL", reachesOperation: true),
    Refusal(operation: "status", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "setMode", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "setOwner", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "remove", mode: 0o600, mentions: "not permitted", reachesOperation: false),
    Refusal(operation: "acquire", mode: 0o644, mentions: "semop", reachesOperation: true),
    Refusal(operation: "setValue", mode: 0o644, mentions: "SETVAL", reachesOperation: true),
    Refusal(operation: "setMode", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "setOwner", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "remove", mode: 0o644, mentions: "not permitted", reachesOperation: false),
  ],
  "shared-memory": [
    Refusal(operation: "open", mode: 0o600, mentions: "shmget", reachesOperation: false),
    Refusal(operation: "openReadOnly", mode: 0o600, mentions: "shmget", reachesOperation: false),
    Refusal(operation: "attach", mode: 0o600, mentions: "IPC_STAT", reachesOperation: false),
    Refusal(
      operation: "attachReadOnly", mode: 0o600, mentions: "IPC_STAT", reachesOperation: false),
    // A segment instance needs its size (IPC_STAT): without read access nothing gets further.
    Refusal(operation: "status", mode: 0o600, mentions: "IPC_STAT", reachesOperation: false),
    Refusal(operation: "setMode", mode: 0o600, mentions: "IPC_STAT", reachesOperation: false),
    Refusal(operation: "remove", mode: 0o600, mentions: "not permitted", reachesOperation: false),
    Refusal(operation: "open", mode: 0o644, mentions: "shmget", reachesOperation: false),
    Refusal(operation: "attach", mode: 0o644, mentions: "shmat", reachesOperation: false),
    Refusal(operation: "writeReadOnly", mode: 0o644, mentions: "read-only", reachesOperation: true),
    Refusal(operation: "setMode", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "setOwner", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "remove", mode: 0o644, mentions: "not permitted", reachesOperation: false),
  ],
  "message-queue": [
    Refusal(operation: "open", mode: 0o600, mentions: "msgget", reachesOperation: false),
    Refusal(operation: "send", mode: 0o600, mentions: "msgsnd", reachesOperation: true),
    Refusal(operation: "receive", mode: 0o600, mentions: "msgrcv", reachesOperation: true),
    Refusal(operation: "status", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "setMode", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "setOwner", mode: 0o600, mentions: "IPC_STAT", reachesOperation: true),
    Refusal(operation: "setMaxSize", mode: 0o600, mentions: "msgctl", reachesOperation: true),
    Refusal(operation: "remove", mode: 0o600, mentions: "not permitted", reachesOperation: false),
    Refusal(operation: "send", mode: 0o644, mentions: "msgsnd", reachesOperation: true),
    Refusal(operation: "setMode", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "setOwner", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(
      operation: "setMaxSize", mode: 0o644, mentions: "not permitted", reachesOperation: true),
    Refusal(operation: "remove", mode: 0o644, mentions: "not permitted", reachesOperation: false),
  ],
]

extension ReliabilitySecurityTests {
  /// Root-owned objects refuse nobody every operation of the table with `.permissions`, with a
  /// message naming the refusing call; afterwards every object is exactly as it was (value,
  /// contents, messages, mode, owner, capacity).
  @Test(
    .enabled(if: isRoot, "needs root to drop to nobody"),
    arguments: ["semaphore", "shared-memory", "message-queue"])
  func rootOwnedObjectsRefuseNobodyEveryOperation(_ kind: String) async throws {
    let rows = try #require(refusals[kind])
    for mode: IPCPermissions in [0o600, 0o644] {
      let object: any IPCObject
      let state: () throws -> String
      switch kind {
      case "semaphore":
        let semaphore = try makeSemaphore(initialValue: 1, mode: mode)
        object = semaphore
        state = { "value \(try semaphore.value)" }
      case "shared-memory":
        let memory = try makeSharedMemory(size: 64, mode: mode, initCharacter: 0x2E)
        try memory.write("root data")
        object = memory
        state = {
          "bytes \(try memory.read()) attached \(try memory.numberAttached)"
        }
      default:
        let queue = try makeMessageQueue(mode: mode)
        try await queue.send("secret", type: 5)
        object = queue
        state = {
          "messages \(try queue.currentMessages) bytes \(try queue.currentBytes) "
            + "maxSize \(try queue.maxSize)"
        }
      }
      defer { try? object.remove() }
      let before = try state()
      var refused = 0
      for row in rows where row.mode == mode {
        let outcome = try await HelperProcess.run([
          "--as-nobody", "rel-op", kind, row.operation, String(object.id),
          String(object.key.rawValue),
        ])
        let label = "\(kind) \(row.operation) on \(mode)"
        #expect(outcome.value("privileges") == "dropped", "\(label): \(outcome.output)")
        #expect(outcome.errorKind == "permissions", "\(label): \(outcome.output)")
        #expect(outcome.output.contains(row.mentions), "\(label): \(outcome.output)")
        #expect(
          (outcome.value("opened") == "yes") == row.reachesOperation, "\(label): \(outcome.output)")
        if outcome.errorKind == "permissions" { refused += 1 }
      }
      #expect(try state() == before, "\(kind) \(mode) changed")
      #expect(try object.mode == mode)
      #expect(try object.uid == 0)
      #expect(try object.cuid == 0)
      reportFigure("permissions: \(kind) mode \(mode): \(refused) operations refused to nobody")
      if let queue = object as? MessageQueue {
        #expect(
          try await queue.receive(block: false) == (Array("secret".utf8), 5), "nothing forged")
      }
    }
  }
}
