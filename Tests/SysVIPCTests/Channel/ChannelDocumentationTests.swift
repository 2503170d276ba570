import Foundation
import SysVIPC
import SysVIPCChannel
import Testing

/// The SysVIPCChannel catalog's code, compiled and run here; the checker below finds every code
/// block of the catalog's articles in this file, line for line (as DocumentationExamplesTests
/// does for SysVIPC's catalog).
@Suite("Documentation: the channel catalog's code is compiled and run")
struct ChannelDocumentationTests {
  static let catalog = DocumentationExamplesTests.root
    .appendingPathComponent("Sources/SysVIPCChannel/SysVIPCChannel.docc")

  @Test func choosingAChannel() throws {
    let channel = try MessageChannel.create(key: nil, capacity: 64, maxMessageSize: 4096)
    defer { try? channel.remove() }
    try channel.send(Array("hello".utf8), type: 2)
    let (message, type) = try channel.receive()
    #expect(String(decoding: message, as: UTF8.self) == "hello" && type == 2)
  }

  @Test func oneProducer() throws {
    let pipeline = try MessageChannel.create(
      key: nil, capacity: 256, maxMessageSize: 1024, singleProducer: true)
    defer { try? pipeline.remove() }
    try pipeline.send(Array("frame".utf8))
    #expect(pipeline.isSingleProducer)
    #expect(try pipeline.receive().message == Array("frame".utf8))
  }

  /// The README's channel example is the same code as ``choosingAChannel()``.
  @Test func readmeExampleIsHere() throws {
    let readme = try String(
      contentsOf: DocumentationExamplesTests.root.appendingPathComponent("README.md"),
      encoding: .utf8)
    let section = try #require(
      readme.components(separatedBy: "(`SysVIPCChannel`)").dropFirst().first)
    let block = section.components(separatedBy: "```").dropFirst().first ?? ""
    let lines = block.split(separator: "\n").dropFirst().map {
      DocumentationExamplesTests.normalized($0)
    }
    let this = try String(contentsOfFile: #filePath, encoding: .utf8)
      .split(separator: "\n").map { DocumentationExamplesTests.normalized($0) }
    #expect(lines.count >= 4)
    #expect(lines.allSatisfy { this.contains($0) })
  }

  @Test func everyCodeBlockIsHere() throws {
    let this = try String(contentsOfFile: #filePath, encoding: .utf8)
      .split(separator: "\n", omittingEmptySubsequences: false)
      .map { DocumentationExamplesTests.normalized($0) }
    var blocks = 0
    for file in try FileManager.default.contentsOfDirectory(atPath: Self.catalog.path)
    where file.hasSuffix(".md") {
      let text = try String(contentsOf: Self.catalog.appendingPathComponent(file), encoding: .utf8)
      let parts = text.components(separatedBy: "```")
      // Odd parts are code blocks: a language line, then the code.
      for (index, part) in parts.enumerated() where index % 2 == 1 {
        var lines = part.split(separator: "\n", omittingEmptySubsequences: false).map {
          DocumentationExamplesTests.normalized($0)
        }
        let language = lines.removeFirst()
        guard !DocumentationExamplesTests.unchecked.contains(language) else { continue }
        lines = lines.filter { !$0.isEmpty }
        blocks += 1
        let found = this.indices.contains { start in
          start + lines.count <= this.count && Array(this[start..<start + lines.count]) == lines
        }
        #expect(found, "\(file): a ```\(language) block is not in ChannelDocumentationTests.swift")
      }
    }
    #expect(blocks >= 1)
  }
}
