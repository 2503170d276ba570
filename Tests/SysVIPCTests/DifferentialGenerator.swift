/// The operations of the differential test (issue 16) and their seeded generator.
///
/// A sequence works on one kind of object at a key of each side's own (random, created
/// exclusively by its first operation), through one or more handles; both sides run the same
/// sequence, each on its own objects. The fields mean what Tests/Interop/differential_driver.py
/// says; `a`, `b`, `c` are the operation's numbers and `f` indexes [0, IPC_CREAT, IPC_EXCL,
/// IPC_CREX].
struct DifferentialOperation: Hashable, Sendable, CustomStringConvertible {
  enum Kind: String, Sendable, CaseIterable { case sem, shm, mq }

  var op: String
  var h = 0
  var a = 0
  var b = 0
  var c = 0
  var f = 0
  /// Uses the side's second key, where no object is at first, instead of the object's key.
  var missingKey = false

  var description: String {
    var text = "\(op)(h\(h) a=\(a) b=\(b) c=\(c)"
    if op == "create" { text += " flags=\(["0", "CREAT", "EXCL", "CREX"][f])" }
    if missingKey { text += " missing-key" }
    return text + ")"
  }

  /// The request line for the Python driver.
  func json(key: Int32) -> String {
    #"{"op":"run","name":"\#(op)","h":\#(h),"a":\#(a),"b":\#(b),"c":\#(c),"f":\#(f),"key":\#(key),"keep":\#(!missingKey)}"#
  }
}

/// SplitMix64: a small, fast generator whose whole state is the seed, so a printed seed
/// reproduces a run exactly.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Random sequences, mostly valid operations with a share of bad arguments and edge values.
struct DifferentialGenerator {
  var rng: SplitMix64

  init(seed: UInt64) { rng = SplitMix64(seed: seed) }

  mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
  mutating func chance(_ percent: Int) -> Bool { int(1...100) <= percent }
  mutating func pick<T>(_ values: [T]) -> T { values[int(0...values.count - 1)] }

  /// A small number most of the time, an edge (0, negative, type limits) sometimes.
  mutating func number(small: ClosedRange<Int>, edges: [Int]) -> Int {
    chance(85) ? int(small) : pick(edges)
  }

  mutating func mode() -> Int {
    chance(90)
      ? pick([0o600, 0o644, 0o666, 0o400, 0o640, 0o777, 0o000]) : pick([0o1000, 0o4600, 0o7777])
  }

  mutating func flags() -> Int { chance(70) ? pick([0, 1, 2, 3]) : 1 }

  /// One sequence of `length` operations on a fresh object of `kind`: it starts by creating
  /// the object exclusively (flags IPC_CREX, a valid mode).
  mutating func sequence(_ kind: DifferentialOperation.Kind, length: Int)
    -> [DifferentialOperation]
  {
    var first = DifferentialOperation(op: "create", a: 0o600, f: 3)
    switch kind {
    case .sem: first.b = int(0...3)
    case .shm:
      first.b = pick([1, 7, 64, 100, 4096, 5000, 0])
      first.c = int(0...255)
    case .mq: first.b = pick([2048, 16, 1, 100, 8192])
    }
    return [first] + (1..<max(length, 1)).map { _ in operation(kind) }
  }

  mutating func operation(_ kind: DifferentialOperation.Kind) -> DifferentialOperation {
    var op = DifferentialOperation(op: "", h: int(0...3))
    let common = int(1...100)
    if common <= 4 {
      op.op = "create"
      op.f = flags()
      op.a = mode()
      op.missingKey = chance(15)
      switch kind {
      case .sem: op.b = number(small: 0...5, edges: [-1, 32767, 32768, 65536, Int(Int32.max)])
      case .shm:
        // No huge sizes: Python fills a new segment with its init character, every byte.
        op.b = number(small: 0...200, edges: [-1, 4096, 4097, Int.max])
        op.c = int(0...255)
      case .mq: op.b = number(small: 1...4096, edges: [0, -1, 1 << 20, Int(Int32.max) + 1])
      }
      return op
    }
    if common <= 6 { return DifferentialOperation(op: "remove", h: op.h) }
    if common <= 9 { op.op = "setMode"; op.a = mode(); return op }
    if common <= 11 { op.op = "mode"; return op }
    if common <= 12 { op.op = "owner"; return op }
    if common <= 13 {
      // Root keeps its access (CAP_IPC_OWNER) to an object it gives away.
      op.op = "setOwner"
      (op.a, op.b) = (pick([0, 65534, 1000]), pick([0, 65534, 1000]))
      return op
    }
    switch kind {
    case .sem:
      let delta = { (g: inout DifferentialGenerator) in
        g.number(small: 1...3, edges: [0, -1, -2, 32767, 32768, 1 << 31])
      }
      switch int(1...100) {
      case 1...30:
        op.op = "acquire"
        op.a = delta(&self)
        op.b = pick([0, 4, 5, 2, 6])  // bit 0: block, 1: undo, 2: timeout 0; never a real wait
      case 31...60:
        op.op = "release"
        op.a = delta(&self)
        op.b = pick([0, 2])
      case 61...68: op.op = "zero"; op.b = pick([0, 4, 5])
      case 69...80: op.op = "value"
      case 81...96:
        op.op = "setValue"
        op.a = number(small: 0...4, edges: [-1, 32767, 32768, 65535, 1 << 31])
      default: op.op = "waiters"
      }
    case .shm:
      let size = 5000
      switch int(1...100) {
      case 1...10: op.op = "attach"; op.a = chance(25) ? 1 : 0
      case 11...20: op.op = "detach"
      case 21...50:
        op.op = "read"
        op.a = number(small: 0...300, edges: [-1, size, 1 << 40])
        op.b = number(small: 0...size, edges: [-1, 4095, 4096, 4097, 1 << 40])
      case 51...85:
        op.op = "write"
        op.a = number(small: 0...300, edges: [4097, 5001])
        op.b = number(small: 0...size, edges: [-1, 4095, 4096, 1 << 40])
        op.c = int(0...255)
      case 86...92: op.op = "size"
      default: op.op = "attached"
      }
    case .mq:
      switch int(1...100) {
      case 1...40:
        op.op = "send"
        op.a = number(small: 0...200, edges: [2048, 2049, 8192, 8193, 16385])
        // Types stay within a C int: Python takes them as one (OverflowError beyond), SysVIPC
        // as msgsnd's long.
        op.b = number(small: 1...5, edges: [0, -1, Int(Int32.min), Int(Int32.max)])
        op.c = int(0...255)
      case 41...75:
        op.op = "receive"
        op.b = number(small: -5...5, edges: [Int(Int32.min), Int(Int32.max), -1, 0])
      case 76...82: op.op = "maxSize"
      case 83...90:
        op.op = "setMaxSize"
        op.a = number(small: 0...20000, edges: [-1, 16384, 1 << 31, 1 << 40])
      default: op.op = "counts"
      }
    }
    return op
  }
}
