import Foundation
import SysVIPC
import Testing

/// Differential testing against Python's sysv_ipc (issue 16): random operation sequences run
/// through both, compared after every operation (DifferentialRunner.swift).
///
/// `swift test` runs a short run with a fixed seed; `Scripts/differential.sh N [SEED]` runs N
/// operations (SYSVIPC_DIFFERENTIAL_OPERATIONS, SYSVIPC_DIFFERENTIAL_SEED). A divergence is
/// reported with its seed and the shortest sequence that still shows it.
@Suite("Differential: SysVIPC against Python's sysv_ipc", .serialized)
struct DifferentialTests {
  static let environment = ProcessInfo.processInfo.environment
  static let operations = environment["SYSVIPC_DIFFERENTIAL_OPERATIONS"].flatMap(Int.init) ?? 3000
  static let seed = environment["SYSVIPC_DIFFERENTIAL_SEED"].flatMap { UInt64($0) } ?? 20_261_202

  @Test(.enabled(if: python3 != nil, "needs python3 with sysv_ipc (.ci/run installs it)"))
  func randomSequencesAgreeWithPython() throws {
    let runner = DifferentialRunner(python: python3!)
    var generator = DifferentialGenerator(seed: Self.seed)
    let clock = ContinuousClock()
    let start = clock.now
    var sequences = 0
    var divergences: [DifferentialRunner.Divergence] = []
    while runner.operations < Self.operations && divergences.count < 5 {
      let kind = DifferentialOperation.Kind.allCases[sequences % 3]
      let sequence = generator.sequence(kind, length: generator.int(1...60))
      sequences += 1
      if let divergence = try runner.run(kind, sequence) {
        let shrunk = try runner.shrink(divergence)
        Issue.record("seed \(Self.seed), sequence \(sequences): \(shrunk)")
        divergences.append(shrunk)
      }
    }
    let differences = DifferentialDifference.allCases.map {
      "\($0.rawValue) \(runner.differences[$0, default: 0])"
    }
    print(
      "differential: seed \(Self.seed), \(runner.operations) operations in \(sequences) sequences,"
        + " \(divergences.count) divergences, \(clock.now - start);"
        + " intentional differences: \(differences.joined(separator: ", "))")
    #expect(runner.operations >= Self.operations || !divergences.isEmpty)
  }
}
