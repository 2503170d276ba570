import Foundation
import SysVIPC
import Testing

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Waits until `helper` has said it is about to wait and sleeps in the kernel (state S).
private func waitUntilBlocked(_ helper: HelperProcess) async throws {
  try await waitUntil("helper \(helper.arguments) blocked in the kernel") {
    helper.value("waiting") == "yes" && helper.state == "S"
  }
}

@Suite("MessageQueue: two processes")
struct MessageQueueProcessTests {
  @Test func aHelperBlockedInReceiveWakesOnSend() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let helper = try HelperProcess(["mq-receive", String(queue.id)])
    try await waitUntilBlocked(helper)
    #expect(try queue.lastReceivePID == 0, "nothing received yet")
    try await queue.send("wake up", type: 5)
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("message") == "wake up")
    #expect(outcome.value("type") == "5")
    #expect(try queue.lastReceivePID == helper.pid)
    #expect(try queue.lastSendPID == getpid())
    #expect(try queue.currentMessages == 0)
  }

  @Test func aHelperBlockedInSendWakesOnReceive() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(10)
    try await queue.send(messagePattern(10))
    let helper = try HelperProcess(["mq-send", String(queue.id), "second", "--type", "2"])
    try await waitUntilBlocked(helper)
    #expect(try queue.currentMessages == 1, "the helper's message is not in yet")
    #expect(try await queue.receive(block: false).message == messagePattern(10))
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(try queue.lastSendPID == helper.pid)
    #expect(try await queue.receive(block: false) == (Array("second".utf8), 2))
  }

  @Test func removalWhileAHelperWaitsToReceiveIsExistential() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let helper = try HelperProcess(["mq-receive", String(queue.id)])
    try await waitUntilBlocked(helper)
    try queue.remove()
    let outcome = try await helper.outcome()
    #expect(outcome.errorKind == "existential", "\(outcome.output)")
    #expect(outcome.output.contains("msgrcv"))
  }

  @Test func removalWhileAHelperWaitsToSendIsExistential() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    try queue.setMaxSize(10)
    try await queue.send(messagePattern(10))
    let helper = try HelperProcess(["mq-send", String(queue.id), "blocked"])
    try await waitUntilBlocked(helper)
    try queue.remove()
    let outcome = try await helper.outcome()
    #expect(outcome.errorKind == "existential", "\(outcome.output)")
    #expect(outcome.output.contains("msgsnd"))
  }

  @Test func typedRequestAndReply() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    // A message of another type waits untouched through the exchange.
    try await queue.send("bystander", type: 3)
    let helper = try HelperProcess(["mq-serve", String(queue.id), "3"])
    for request in ["alpha", "beta", "gamma"] {
      try await queue.send(request, type: 1)
      let reply = try await onThread { try queue.receive(type: 2, timeout: .seconds(30)) }
      #expect(String(decoding: reply.message, as: UTF8.self) == request.uppercased())
      #expect(reply.type == 2)
      #expect(try queue.lastSendPID == helper.pid)
    }
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("served") == "3")
    #expect(try queue.currentMessages == 1)
    #expect(try await queue.receive(block: false) == (Array("bystander".utf8), 3))
  }

  @Test func aHelpersTimedReceiveGetsAMessageSentLater() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let helper = try HelperProcess(["mq-receive", String(queue.id), "--timeout", "60"])
    try await helper.waitForLine("waiting", "yes")
    try await queue.send("in time", type: 4)
    let outcome = try await helper.outcome()
    #expect(outcome.ok, "\(outcome.output)")
    #expect(outcome.value("message") == "in time")
    #expect(Double(outcome.value("elapsed") ?? "") ?? 99 < 30)
  }

  @Test func aHelpersTimedReceiveExpires() async throws {
    let queue = try makeMessageQueue()
    defer { try? queue.remove() }
    let outcome = try await HelperProcess.run(
      ["mq-receive", String(queue.id), "--timeout", "0.3"])
    #expect(outcome.errorKind == "busy", "\(outcome.output)")
    let seconds = Double(outcome.value("elapsed") ?? "") ?? 0
    #expect(seconds >= 0.29 && seconds < 5, "\(seconds) s")
  }

  @Test(.enabled(if: isRoot, "permission tests need root to create what nobody is refused"))
  func nobodyMayNotSendToOrReceiveFromARoot0600Queue() async throws {
    let queue = try makeMessageQueue(mode: 0o600)
    defer { try? queue.remove() }
    try await queue.send("secret", type: 1)
    let key = String(queue.key.rawValue)

    // Opened asking for no access (mode 0), so that msgsnd / msgrcv meet the check themselves.
    let send = try await HelperProcess.run(
      ["--as-nobody", "mq-send", "--key", key, "--mode", "0", "forged"])
    #expect(send.value("privileges") == "dropped", "\(send.output)")
    #expect(send.value("opened") == "yes", "\(send.output)")
    #expect(send.errorKind == "permissions", "\(send.output)")
    #expect(send.output.contains("msgsnd"), "\(send.output)")

    let receive = try await HelperProcess.run(
      ["--as-nobody", "mq-receive", "--key", key, "--mode", "0", "--no-block"])
    #expect(receive.value("privileges") == "dropped", "\(receive.output)")
    #expect(receive.value("opened") == "yes", "\(receive.output)")
    #expect(receive.errorKind == "permissions", "\(receive.output)")
    #expect(receive.output.contains("msgrcv"), "\(receive.output)")

    // Asking for access when opening is refused too, by key and by id.
    let open = try await HelperProcess.run(["--as-nobody", "mq-open", key])
    #expect(open.value("privileges") == "dropped")
    #expect(open.errorKind == "permissions", "\(open.output)")
    let byID = try await HelperProcess.run(["--as-nobody", "mq-receive", String(queue.id)])
    #expect(byID.value("privileges") == "dropped")
    #expect(byID.errorKind == "permissions", "\(byID.output)")

    #expect(try queue.currentMessages == 1)
    #expect(
      try await queue.receive(block: false) == (Array("secret".utf8), 1), "nothing lost or forged")
  }

  @Test(.enabled(if: isRoot, "permission tests need root to drop to nobody"))
  func nobodyMayLowerButNotRaiseMaxSizeAboveMsgmnb() async throws {
    let msgmnb = try messageQueueLimit("msgmnb")
    let created = try await HelperProcess.run(["--as-nobody", "mq-create"])
    #expect(created.value("privileges") == "dropped", "\(created.output)")
    #expect(created.ok, "\(created.output)")
    let id = try #require(created.value("id").flatMap(Int32.init))
    defer { try? MessageQueue.remove(id: id) }
    let queue = try MessageQueue(id: id)
    #expect(try queue.uid == 65534)
    #expect(try queue.cuid == 65534)

    let lower = try await HelperProcess.run(
      ["--as-nobody", "mq-set-max-size", String(id), String(msgmnb - 100)])
    #expect(lower.value("privileges") == "dropped")
    #expect(lower.ok, "\(lower.output)")
    #expect(lower.value("maxSize") == String(msgmnb - 100))

    let raise = try await HelperProcess.run(
      ["--as-nobody", "mq-set-max-size", String(id), String(msgmnb + 1)])
    #expect(raise.value("privileges") == "dropped")
    #expect(raise.errorKind == "permissions", "\(raise.output)")
    #expect(try queue.maxSize == msgmnb - 100, "unchanged")

    // Back up to msgmnb itself needs no capability.
    let restore = try await HelperProcess.run(
      ["--as-nobody", "mq-set-max-size", String(id), String(msgmnb)])
    #expect(restore.ok, "\(restore.output)")
    #expect(try queue.maxSize == msgmnb)
  }
}
