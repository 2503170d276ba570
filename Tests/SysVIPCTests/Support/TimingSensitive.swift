import Testing

/// Tests whose assertions are timings (a deadline kept through signals, a cancellation within
/// 50 ms) and the tests that saturate this machine's few cores (the load tests; the demos and
/// interop conversations, which poll as the reference's demos do) take turns: Swift Testing
/// runs suites in parallel, and a timing measured during a load would be the load's, not the
/// library's.
struct TimingSensitive: TestTrait, SuiteTrait, TestScoping {
  var isRecursive: Bool { true }

  func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    // A suite's own scope just runs it: each of its test cases takes the turn.
    guard testCase != nil else { return try await function() }
    await TimingTurns.shared.begin()
    do {
      try await function()
    } catch {
      await TimingTurns.shared.end()
      throw error
    }
    await TimingTurns.shared.end()
  }
}

extension Trait where Self == TimingSensitive {
  /// Runs the test alone among the timing-sensitive and load tests.
  static var timingSensitive: Self { Self() }
}

/// A first-come, first-served turn, across suites.
private actor TimingTurns {
  static let shared = TimingTurns()
  private var taken = false
  private var waiting: [CheckedContinuation<Void, Never>] = []

  func begin() async {
    guard taken else {
      taken = true
      return
    }
    await withCheckedContinuation { waiting.append($0) }
  }

  func end() {
    if waiting.isEmpty { taken = false } else { waiting.removeFirst().resume() }
  }
}
