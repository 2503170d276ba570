// The code of the DocC articles (Sources/SysVIPC/SysVIPC.docc) lives in the
// DocumentationExamples*.swift test files, where it is compiled and run: a renamed API breaks the
// build, not the documentation. This suite checks that every code block of every article is
// present, line for line, in those files, so the two cannot drift apart.
import Foundation
import Testing

@Suite("Documentation: every article's code is a compiled, running example")
struct DocumentationExamplesTests {
  /// The repository root, from this file's path.
  static let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static let catalog = root.appendingPathComponent("Sources/SysVIPC/SysVIPC.docc")

  /// Code blocks in these languages are commands or output, not examples to compile.
  static let unchecked: Set<String> = ["sh", "shell", "bash", "console", "text", "output"]

  struct CodeBlock: CustomStringConvertible {
    var article: String
    var line: Int
    var language: String
    var lines: [String]
    var description: String { "\(article):\(line) (```\(language))" }
  }

  /// Every fenced code block of every article.
  static func codeBlocks() throws -> [CodeBlock] {
    let files = try FileManager.default.contentsOfDirectory(atPath: catalog.path)
      .filter { $0.hasSuffix(".md") }.sorted()
    var blocks: [CodeBlock] = []
    for file in files {
      let text = try String(
        contentsOf: catalog.appendingPathComponent(file), encoding: .utf8)
      var current: CodeBlock?
      for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false)
        .enumerated()
      {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("```") {
          if let block = current {
            blocks.append(block)
            current = nil
          } else {
            current = CodeBlock(
              article: file, line: number + 1, language: String(trimmed.dropFirst(3)), lines: [])
          }
        } else if current != nil {
          current!.lines.append(String(line))
        }
      }
    }
    return blocks
  }

  /// A line as compared: trimmed, with runs of spaces made one (swift-format writes
  /// `catch  where`, with two).
  static func normalized(_ line: some StringProtocol) -> String {
    line.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
      .trimmingCharacters(in: .whitespaces)
  }

  /// The example files' lines, normalized, one array per file.
  static func exampleSources() throws -> [[String]] {
    let directory = root.appendingPathComponent("Tests/SysVIPCTests")
    return try FileManager.default.contentsOfDirectory(atPath: directory.path)
      .filter { $0.hasPrefix("DocumentationExamples") && $0 != "DocumentationExamplesTests.swift" }
      .map {
        try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)
          .split(separator: "\n", omittingEmptySubsequences: false)
          .map { normalized($0) }
      }
  }

  @Test func articlesHaveCode() throws {
    let blocks = try Self.codeBlocks()
    #expect(blocks.count >= 20, "found only \(blocks.count) code blocks in \(Self.catalog.path)")
  }

  @Test func everyCodeBlockIsATestedExample() throws {
    let sources = try Self.exampleSources()
    #expect(!sources.isEmpty)
    for block in try Self.codeBlocks() where !Self.unchecked.contains(block.language) {
      #expect(
        ["swift", "python", "c", "php"].contains(block.language),
        "\(block): give every code block a language")
      var lines = block.lines.map { Self.normalized($0) }
      // A manifest excerpt cannot be compiled by a test; it is marked as such.
      if lines.first == "// In Package.swift:" { continue }
      // Imports at the top of a Swift example: each must be an import of the same file.
      var imports: [String] = []
      while block.language == "swift", let first = lines.first,
        first.hasPrefix("import ") || first.isEmpty
      {
        if !first.isEmpty { imports.append(first) }
        lines.removeFirst()
      }
      let found = sources.contains { source in
        imports.allSatisfy(source.contains) && Self.contains(source, lines)
      }
      let listing = block.lines.joined(separator: "\n")
      #expect(
        found, "\(block): this code is not in any DocumentationExamples*.swift file:\n\(listing)")
    }
  }

  /// Whether `lines` occur contiguously in `source`.
  static func contains(_ source: [String], _ lines: [String]) -> Bool {
    guard !lines.isEmpty, lines.count <= source.count else { return lines.isEmpty }
    for start in 0...(source.count - lines.count)
    where source[start..<(start + lines.count)].elementsEqual(lines) {
      return true
    }
    return false
  }
}
