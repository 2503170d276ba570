// The examples of the article "Interoperating with C and Python" (SysVIPC.docc/Interop.md):
// the Swift side runs here, the C and Python programs of the article are compiled or run as
// real second processes. Skipped, saying why, without python3 + sysv_ipc or a C compiler.
import Foundation
import SysVIPC
import Testing

// Interop.md: the Swift side of the conversation.
/// Sends `text` to the other program (type 1) and returns its answer (type 2).
func askOtherProgram(_ text: String, on queue: MessageQueue) throws(IPCError) -> String {
  try queue.send(text, type: 1)
  let (reply, _) = try queue.receive(type: 2, timeout: .seconds(30))
  return String(decoding: reply, as: UTF8.self)
}

/// Interop.md: the Python program.
let pythonShouter = #"""
  import sys
  import sysv_ipc

  queue = sysv_ipc.MessageQueue(int(sys.argv[1]))
  request, request_type = queue.receive(type=1)
  queue.send(request.upper(), type=2)
  """#

/// Interop.md: the C program.
let cShouter = #"""
  #include <stdio.h>
  #include <stdlib.h>
  #include <sys/msg.h>

  /* The kernel's layout of a message: a long type, then the text. */
  struct message {
      long type;
      char text[2048];
  };

  int main(int argc, char **argv) {
      if (argc != 2) return 2;
      int queue = msgget((key_t)strtol(argv[1], NULL, 10), 0);
      if (queue < 0) { perror("msgget"); return 1; }
      struct message request;
      ssize_t length = msgrcv(queue, &request, sizeof request.text, 1, 0);
      if (length < 0) { perror("msgrcv"); return 1; }
      for (ssize_t i = 0; i < length; i++)
          if (request.text[i] >= 'a' && request.text[i] <= 'z') request.text[i] -= 'a' - 'A';
      request.type = 2;
      if (msgsnd(queue, &request, (size_t)length, 0) < 0) { perror("msgsnd"); return 1; }
      return 0;
  }
  """#

/// Interop.md: the reference's semaphore recipe, in Python.
let pythonSemaphoreRecipe = #"""
  import sys
  import time
  import sysv_ipc

  key = int(sys.argv[1])
  try:
      sem = sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX)
  except sysv_ipc.ExistentialError:
      sem = sysv_ipc.Semaphore(key)
      while not sem.o_time:
          time.sleep(.1)
  else:
      sem.release()
  print(sem.value)
  """#

/// Writes `text` to a new temporary file with this name and returns its path.
func temporaryFile(_ name: String, _ text: String) throws -> String {
  let directory = FileManager.default.temporaryDirectory
    .appendingPathComponent("sysvipc-docs-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  let path = directory.appendingPathComponent(name).path
  try text.write(toFile: path, atomically: true, encoding: .utf8)
  return path
}

@Suite("Documentation examples: interoperating with C and Python")
struct DocumentationExamplesInterop {
  @Test(.enabled(if: python3 != nil, "needs python3 with sysv_ipc (pip install sysv-ipc)"))
  func python() async throws {
    let script = try temporaryFile("shout.py", pythonShouter)
    defer {
      try? FileManager.default.removeItem(atPath: (script as NSString).deletingLastPathComponent)
    }
    // Interop.md: the queue.
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    // Start the other program with the key: python3 shout.py <queue.key.rawValue>
    let other = try LaunchedProcess(python3!, [script, "\(queue.key.rawValue)"])
    // askOtherProgram blocks until the other program answers: on a thread of its own.
    let answer = try await onThread {
      let answer = try askOtherProgram("hello from Swift", on: queue)
      // answer == "HELLO FROM SWIFT"
      return answer
    }
    let outcome = try await other.outcome()
    #expect(outcome.status == 0, "\(outcome)")
    #expect(answer == "HELLO FROM SWIFT")
  }

  @Test(.enabled(if: cCompiler != nil, "needs a C compiler (cc)"))
  func c() async throws {
    let source = try temporaryFile("shout.c", cShouter)
    let directory = (source as NSString).deletingLastPathComponent
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let compiled = try await LaunchedProcess.run(
      cCompiler!, ["-Wall", "-Werror", "-o", directory + "/shout", source])
    #expect(compiled.status == 0, "\(compiled)")
    let queue = try MessageQueue(key: nil, flags: .createExclusive)
    defer { try? queue.remove() }
    let other = try LaunchedProcess(directory + "/shout", ["\(queue.key.rawValue)"])
    let answer = try await onThread { try askOtherProgram("hello from Swift", on: queue) }
    #expect(answer == "HELLO FROM SWIFT")
    let outcome = try await other.outcome()
    #expect(outcome.status == 0, "\(outcome)")
  }

  @Test(.enabled(if: python3 != nil, "needs python3 with sysv_ipc (pip install sysv-ipc)"))
  func pythonRecipeAndOpenOrCreateAgree() async throws {
    let script = try temporaryFile("recipe.py", pythonSemaphoreRecipe)
    defer {
      try? FileManager.default.removeItem(atPath: (script as NSString).deletingLastPathComponent)
    }
    // Swift first: Python finds the semaphore initialised (sem_otime set) and does not wait.
    let key = try unusedKeyForExamples()
    let lock = try SysVIPC.Semaphore.openOrCreate(key: key, initialValue: 1)
    defer { try? lock.remove() }
    let afterSwift = try await LaunchedProcess.run(python3!, [script, "\(key.rawValue)"])
    #expect(afterSwift.status == 0 && afterSwift.output == "1\n", "\(afterSwift)")

    // Python first: Swift's openOrCreate finds it initialised and keeps its value.
    let otherKey = try unusedKeyForExamples()
    defer { if let s = try? SysVIPC.Semaphore(key: otherKey) { try? s.remove() } }
    let first = try await LaunchedProcess.run(python3!, [script, "\(otherKey.rawValue)"])
    #expect(first.status == 0 && first.output == "1\n", "\(first)")
    let (opened, created) = try SysVIPC.Semaphore.openOrCreateReportingCreation(
      key: otherKey, initialValue: 5, timeout: .seconds(5))
    #expect(!created)
    #expect(try opened.value == 1)
  }
}
