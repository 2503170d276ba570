import SysVIPC
import Testing

@Suite("SharedMemory: read(into:) without allocating")
struct SharedMemoryReadIntoTests {
  @Test func readsIntoABufferAndClipsAtTheEnd() throws {
    let memory = try SharedMemory(key: nil, flags: .createExclusive, size: 10, initCharacter: 0)
    defer { try? memory.remove() }
    try memory.write(Array(0..<10), offset: 0)
    var buffer = [UInt8](repeating: 0xFF, count: 4)
    #expect(try buffer.withUnsafeMutableBytes { try memory.read(into: $0, offset: 3) } == 4)
    #expect(buffer == [3, 4, 5, 6])
    // Clipped at the end: two bytes remain after offset 8.
    #expect(try buffer.withUnsafeMutableBytes { try memory.read(into: $0, offset: 8) } == 2)
    #expect(buffer == [8, 9, 5, 6])
    var empty: [UInt8] = []
    #expect(try empty.withUnsafeMutableBytes { try memory.read(into: $0) } == 0)
    expectIPCError(.invalidArgument) {
      try buffer.withUnsafeMutableBytes { try memory.read(into: $0, offset: 10) }
    }
    expectIPCError(.invalidArgument) {
      try buffer.withUnsafeMutableBytes { try memory.read(into: $0, offset: -1) }
    }
    try memory.detach()
    expectIPCError(.notAttached) { try buffer.withUnsafeMutableBytes { try memory.read(into: $0) } }
    #expect(buffer == [8, 9, 5, 6], "nothing written on failure")
  }
}
