// The PHP examples of the article "Interoperating with C, Python and PHP" (SysVIPC.docc/
// Interop.md): the Swift side runs here, the article's PHP programs run as real second processes
// (`php`, with the sysvsem and sysvmsg extensions: Debian's php-cli). Skipped, saying why,
// where PHP is missing.
import Foundation
import SysVIPC
import Testing

// Interop.md: PHP's semaphore, counted in.
/// Opens the semaphore that PHP's `sem_get(key, maxAcquire)` shares (a set of 3), and counts
/// this process in as `sem_get` does, so that PHP never takes it for unused and resets it.
func openPHPSemaphore(key: IPCKey, maxAcquire: Int = 1) throws(IPCError) -> SemaphoreSet {
  let set = try SemaphoreSet(key: key, count: 3, flags: .create)
  // Wait for PHP's setup lock (index 2) and take it, and count this process in (index 1), in
  // one atomic step; `undo` gives both back when this process ends, however it ends.
  try set.apply([
    .init(index: 2, delta: 0),
    .init(index: 2, delta: 1, undo: true),
    .init(index: 1, delta: 1, undo: true),
  ])
  defer { try? set.apply([.init(index: 2, delta: -1, undo: true)]) }
  // The first user sets the semaphore's value, as sem_get does.
  if try set.value(at: 1) == 1 { try set.setValue(maxAcquire, at: 0) }
  return set
}

/// Interop.md: acquire and release (synchronous code, as in the article).
func acquireAndReleasePHPSemaphore(key: IPCKey) throws(IPCError) -> SemaphoreSet {
  let shared = try openPHPSemaphore(key: key)
  try shared.apply([.init(index: 0, delta: -1, undo: true)], timeout: .seconds(30))
  // ... what PHP must not do at the same time ...
  try shared.apply([.init(index: 0, delta: 1, undo: true)])
  return shared
}

/// Interop.md: the PHP side of the semaphore.
let phpSemaphoreUser = #"""
  <?php
  $semaphore = sem_get((int)$argv[1]);
  sem_acquire($semaphore);
  echo "acquired\n";
  sem_release($semaphore);
  """#

/// Interop.md: the PHP side of the conversation, raw messages both ways.
let phpShouter = #"""
  <?php
  $queue = msg_get_queue((int)$argv[1]);
  msg_receive($queue, 1, $type, 2048, $request, false);
  msg_send($queue, 2, strtoupper($request), false);
  """#

/// Not in the article: PHP tries the semaphore without waiting (sem_acquire's `non_blocking`)
/// and says whether it got it; it ends without releasing, so its undo gives the value back.
let phpTryAcquire = #"""
  <?php
  $semaphore = sem_get((int)$argv[1]);
  echo sem_acquire($semaphore, true) ? "acquired\n" : "busy\n";
  """#

/// Not in the article: what PHP's defaults do with messages (serialize when sending, unserialize
/// when receiving), for the article's statements about them.
let phpDefaultMessages = #"""
  <?php
  $queue = msg_get_queue((int)$argv[1]);
  msg_send($queue, 3, "hello");
  $received = msg_receive($queue, 1, $type, 2048, $message);
  echo $received ? "received\n" : "refused\n";
  """#

/// `php` when it is installed with the sysvsem and sysvmsg extensions (`.ci/run` installs
/// Debian's php-cli); `nil` otherwise, and the PHP tests are skipped, saying so.
let php: String? = {
  guard let php = onPath("php"),
    succeeds(
      php, ["-r", "exit(function_exists('sem_get') && function_exists('msg_send') ? 0 : 1);"])
  else { return nil }
  return php
}()

@Suite(
  "Documentation examples: interoperating with PHP", .timingSensitive,
  .enabled(if: php != nil, "needs php with sysvsem and sysvmsg (Debian: apt-get install php-cli)"))
struct DocumentationExamplesPHP {
  /// Runs one of the PHP programs above with `arguments`.
  func runPHP(_ program: String, _ arguments: [String]) async throws -> LaunchedProcess.Outcome {
    let script = try temporaryFile("program.php", program)
    defer {
      try? FileManager.default.removeItem(atPath: (script as NSString).deletingLastPathComponent)
    }
    return try await LaunchedProcess.run(php!, [script] + arguments)
  }

  @Test func countedInSwiftHoldsTheSemaphoreAgainstPHP() async throws {
    let key = try unusedKeyForExamples()
    defer { removeObjects(withKey: key) }
    let shared = try acquireAndReleasePHPSemaphore(key: key)
    #expect(try shared.values() == [1, 1, 0], "value 1, one user (this process), lock free")

    // Holding it again: PHP's sem_get finds two users and leaves index 0 alone.
    try await shared.apply([.init(index: 0, delta: -1, undo: true)], timeout: .seconds(30))
    let tried = try await runPHP(phpTryAcquire, ["\(key.rawValue)"])
    #expect(tried.status == 0 && tried.output == "busy\n", "\(tried)")
    #expect(try shared.values() == [0, 1, 0], "PHP's count and lock given back when it ended")

    // The article's PHP program waits in sem_acquire until Swift releases.
    let script = try temporaryFile("user.php", phpSemaphoreUser)
    defer {
      try? FileManager.default.removeItem(atPath: (script as NSString).deletingLastPathComponent)
    }
    let user = try LaunchedProcess(php!, [script, "\(key.rawValue)"])
    do {
      try await waitUntil("PHP waits for the semaphore", timeout: .seconds(60)) {
        try shared.waitingForNonzero(at: 0) == 1
      }
    } catch {
      await user.kill()
      throw error
    }
    #expect(try shared.values() == [0, 2, 0], "PHP counted itself in: two users")
    #expect(!user.output.contains("acquired"), "PHP must not get in while Swift holds it")
    try await shared.apply([.init(index: 0, delta: 1, undo: true)])
    let outcome = try await user.outcome()
    #expect(outcome.status == 0 && outcome.output == "acquired\n", "\(outcome)")
    #expect(try shared.values() == [1, 1, 0], "released by PHP, PHP no longer counted")
  }

  /// Why the article counts Swift in: without it, PHP's sem_get resets a semaphore that Swift
  /// holds, and PHP gets in. (If this stops happening, PHP changed and the article must too.)
  @Test func uncountedSwiftIsResetByPHP() async throws {
    let set = try SemaphoreSet(key: nil, count: 3, flags: .createExclusive)
    defer { try? set.remove() }
    try set.setValue(1, at: 0)
    try await set.apply([.init(index: 0, delta: -1, undo: true)])
    #expect(try set.values() == [0, 0, 0])
    let tried = try await runPHP(phpTryAcquire, ["\(set.key.rawValue)"])
    #expect(tried.status == 0 && tried.output == "acquired\n", "\(tried)")
  }

  @Test func rawMessagesBothWays() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let script = try temporaryFile("shout.php", phpShouter)
    defer {
      try? FileManager.default.removeItem(atPath: (script as NSString).deletingLastPathComponent)
    }
    let other = try LaunchedProcess(php!, [script, "\(queue.key.rawValue)"])
    let answer = try await onThread { try askOtherProgram("hello from Swift", on: queue) }
    let outcome = try await other.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(answer == "HELLO FROM SWIFT")
  }

  @Test func phpDefaultsSerializeAndRefuseRawBytes() async throws {
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    try await queue.send("raw from Swift", type: 1)
    let outcome = try await runPHP(phpDefaultMessages, ["\(queue.key.rawValue)"])
    #expect(outcome.status == 0 && outcome.output == "refused\n", "\(outcome)")
    #expect(outcome.errors.contains("Message corrupted"), "\(outcome)")
    #expect(try queue.currentMessages == 1, "only PHP's own message is left: Swift's is gone")
    let (serialized, type) = try await queue.receive(type: 3, timeout: .zero)
    #expect(type == 3)
    #expect(String(decoding: serialized, as: UTF8.self) == #"s:5:"hello";"#)
  }
}
