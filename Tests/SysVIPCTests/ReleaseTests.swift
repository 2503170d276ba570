// The release files agree with the code: the version `sysvipc --version` prints is the newest
// release in CHANGELOG.md, and the platforms the package refuses are refused at compile time.
import Foundation
import Testing

// The compiler runs saturate a core for seconds: they take turns with the timing-sensitive tests.
@Suite("Release: version, changelog and refused platforms", .timingSensitive)
struct ReleaseTests {
  /// The versions of CHANGELOG.md's `## [...]` headings, newest first (`Unreleased` included).
  static func changelogVersions() throws -> [String] {
    let text = try String(contentsOfFile: packageRoot + "/CHANGELOG.md", encoding: .utf8)
    return text.split(separator: "\n").compactMap { line in
      guard line.hasPrefix("## ["), let close = line.firstIndex(of: "]") else { return nil }
      return String(line[line.index(line.startIndex, offsetBy: 4)..<close])
    }
  }

  @Test func versionIsTheChangelogsNewestRelease() async throws {
    let versions = try Self.changelogVersions()
    #expect(versions.first == "Unreleased", "CHANGELOG.md begins with an Unreleased section")
    let newest = try #require(versions.first { $0 != "Unreleased" }, "no release in CHANGELOG.md")
    #expect(newest.wholeMatch(of: /[0-9]+\.[0-9]+\.[0-9]+/) != nil, "\(newest) is not x.y.z")
    let printed = try await sysvipc("--version")
    #expect(printed.status == 0, "\(printed)")
    #expect(
      printed.output == newest + "\n",
      "sysvipc --version printed \(printed.output); CHANGELOG.md's newest release is \(newest)")
  }

  /// The Swift compiler beside the `swift` that runs the tests.
  static let swiftc: String? = onPath("swiftc")

  /// Type-checks UnsupportedPlatforms.swift for `target` (without a standard library, which no
  /// Android SDK is needed for).
  func typecheck(for target: String) async throws -> LaunchedProcess.Outcome {
    try await LaunchedProcess.run(
      Self.swiftc!,
      [
        "-typecheck", "-parse-stdlib", "-target", target,
        packageRoot + "/Sources/SysVIPC/Core/UnsupportedPlatforms.swift",
      ])
  }

  @Test(.enabled(if: swiftc != nil, "needs swiftc on PATH"))
  func androidIsRefusedAtCompileTime() async throws {
    let android = try await typecheck(for: "aarch64-unknown-linux-android28")
    #expect(android.status != 0, "\(android)")
    #expect(android.errors.contains("SysVIPC does not support Android"), "\(android)")
    #expect(android.errors.contains("SELinux"), "the message says why: \(android)")
    // The same file type-checks for Linux: the refusal is Android's alone.
    let linux = try await typecheck(for: "x86_64-unknown-linux-gnu")
    #expect(linux.status == 0, "\(linux)")
  }

  @Test(.enabled(if: cCompiler != nil, "needs a C compiler (cc)"))
  func theCShimRefusesAndroidToo() async throws {
    let shim = packageRoot + "/Sources/CSysVIPC/shim.c"
    let include = packageRoot + "/Sources/CSysVIPC/include"
    let android = try await LaunchedProcess.run(
      cCompiler!, ["-fsyntax-only", "-D__ANDROID__", "-I", include, shim])
    #expect(android.status != 0, "\(android)")
    #expect(android.errors.contains("SysVIPC does not support Android"), "\(android)")
    let linux = try await LaunchedProcess.run(cCompiler!, ["-fsyntax-only", "-I", include, shim])
    #expect(linux.status == 0, "\(linux)")
  }
}
