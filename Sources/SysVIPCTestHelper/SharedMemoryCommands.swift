import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// shm-open KEY [--mode M] [--size N] [--offset O] [--read N] [--write TEXT] [--hold]
///                                   open by key (mode = access asked for; read-only without 0o200)
/// shm-attach ID [--readonly] [--offset O] [--read N] [--write TEXT] [--hold]
///                                   attach by id (SharedMemory.attach(id:))
/// shm-write ID OFFSET TEXT [--hold] attach by id and write TEXT at OFFSET
/// shm-read ID OFFSET COUNT          attach by id and print COUNT bytes at OFFSET as text=...
/// shm-race-open-or-create KEY GATE_ID SIZE INDEX
///                                   wait for the gate semaphore to reach zero, then
///                                   SharedMemory.openOrCreate and set byte INDEX to 1
/// shm-alloc-check ID                count the allocations of the zero-copy paths (Linux, glibc's
///                                   mtrace): prints allocations=N
///
/// Each prints id=, size=, readOnly=, attached=yes and pid=; --read prints text=, --write prints
/// written=yes; --hold then waits, attached, until the test kills it.
func sharedMemoryCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "shm-open":
    let mode = args.mode()
    let size = args.option("size").flatMap(Int.init) ?? 0
    var options = SegmentOptions(&args)
    let memory = try SharedMemory(key: args.key(), mode: mode, size: size)
    try options.use(memory)
  case "shm-attach":
    let readOnly = args.flag("readonly")
    var options = SegmentOptions(&args)
    let memory = try SharedMemory.attach(id: args.int32("id"), flags: readOnly ? .readOnly : [])
    try options.use(memory)
  case "shm-write":
    let hold = args.flag("hold")
    let memory = try SharedMemory.attach(id: args.int32("id"))
    let offset = Int(args.next("offset")) ?? -1
    var options = SegmentOptions(offset: offset, write: args.next("text"), hold: hold)
    try options.use(memory)
  case "shm-read":
    let memory = try SharedMemory.attach(id: args.int32("id"))
    let offset = Int(args.next("offset")) ?? -1
    var options = SegmentOptions(offset: offset, read: Int(args.next("count")) ?? -1)
    try options.use(memory)
  case "shm-race-open-or-create":
    let key = args.key()
    let gate = try Semaphore(id: args.int32("gate"))
    let size = Int(args.next("size")) ?? 0
    let index = Int(args.next("index")) ?? 0
    report("ready", "yes")
    try gate.waitForZero()
    let (memory, created) = try SharedMemory.openOrCreateReportingCreation(key: key, size: size)
    report("created", created ? "yes" : "no")
    try memory.write([1], offset: index)
  case "shm-alloc-check":
    try allocationCheck(id: args.int32("id"))
  default:
    fail("unknown command \(command)")
  }
}

/// What to do with an attached segment.
struct SegmentOptions {
  var offset = 0
  var read: Int?
  var write: String?
  var hold = false

  init(offset: Int = 0, read: Int? = nil, write: String? = nil, hold: Bool = false) {
    self.offset = offset
    self.read = read
    self.write = write
    self.hold = hold
  }

  init(_ args: inout Arguments) {
    offset = args.option("offset").flatMap(Int.init) ?? 0
    read = args.option("read").flatMap(Int.init)
    write = args.option("write")
    hold = args.flag("hold")
  }

  mutating func use(_ memory: SharedMemory) throws {
    report("id", String(memory.id))
    report("size", String(memory.size))
    report("readOnly", memory.isReadOnly ? "yes" : "no")
    report("attached", memory.isAttached ? "yes" : "no")
    report("pid", String(getpid()))
    if let read {
      let bytes = try memory.read(count: read, offset: offset)
      report("text", String(decoding: bytes, as: UTF8.self))
    }
    if let write {
      try memory.write(write, offset: offset)
      report("written", "yes")
    }
    if hold {
      withExtendedLifetime(memory) { holdForever() }
    }
  }
}

/// Runs every zero-copy path many times under glibc's mtrace and counts the allocations.
///
/// mtrace lives in libc_malloc_debug.so since glibc 2.34, which must be preloaded: the helper
/// runs itself again with LD_PRELOAD and MALLOC_TRACE set (exec, not fork).
func allocationCheck(id: Int32) throws {
  #if canImport(Glibc)
    let tracePath = "/tmp/sysvipc-shm-mtrace-\(getpid())"
    guard getenv("MALLOC_TRACE") != nil else {
      setenv("LD_PRELOAD", "libc_malloc_debug.so.0", 1)
      setenv("MALLOC_TRACE", tracePath, 1)
      let words: [String] = ["SysVIPCTestHelper", "shm-alloc-check", String(id)]
      let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
      execv("/proc/self/exe", argv)
      fail("could not run itself again: errno \(errno)")
    }
    // The working mtrace is the versioned one in the preloaded library (libc keeps a stub that
    // plain dlsym finds); dlvsym is a GNU extension that Swift's Glibc does not import.
    typealias Toggle = @convention(c) () -> Void
    typealias VersionedLookup =
      @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafePointer<CChar>) ->
      UnsafeMutableRawPointer?
    guard let library = dlopen("libc_malloc_debug.so.0", RTLD_NOW | RTLD_NOLOAD),
      let lookup = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "dlvsym")
    else { fail("libc_malloc_debug.so.0 is not loaded") }
    let dlvsym = unsafeBitCast(lookup, to: VersionedLookup.self)
    guard let on = dlvsym(library, "mtrace", "GLIBC_2.2.5"),
      let off = dlvsym(library, "muntrace", "GLIBC_2.2.5")
    else { fail("no mtrace in libc_malloc_debug.so.0") }
    let mtrace = unsafeBitCast(on, to: Toggle.self)
    let muntrace = unsafeBitCast(off, to: Toggle.self)

    let memory = try SharedMemory.attach(id: id)
    let source: [UInt8] = [1, 2, 3, 4]
    var sink: UInt8 = 0
    func exercise() throws {
      sink &+= try memory.withUnsafeBytes { $0[0] }
      sink &+= try memory.withUnsafeBytes { (buffer) throws -> UInt8 in buffer[1] }
      try memory.withUnsafeMutableBytes { $0[2] = sink }
      try memory.withUnsafeMutableBytes { (buffer) throws in buffer[3] = 7 }
      sink &+= try memory.withBytes { $0.unsafeLoad(fromByteOffset: 4, as: UInt8.self) }
      sink &+= try memory.withBytes { (span) throws -> UInt8 in
        span.unsafeLoad(fromByteOffset: 5, as: UInt8.self)
      }
      try memory.withMutableBytes { $0.storeBytes(of: sink, toByteOffset: 6, as: UInt8.self) }
      try memory.withMutableBytes { (span) throws in
        span.storeBytes(of: 9, toByteOffset: 7, as: UInt8.self)
      }
      try source.withUnsafeBytes { (raw) throws in try memory.write(raw, offset: 8) }
      sink &+= memory.isAttached ? 1 : 0
    }
    try exercise()  // first calls may set up runtime metadata
    let rounds = 1000
    // mtrace lines: "@ caller + address size" (malloc), "< / >" (realloc), "- address" (free).
    func countAllocations(_ body: () throws -> Void) throws -> Int {
      unlink(tracePath)
      mtrace()
      try body()
      muntrace()
      let trace = (try? readFile(tracePath)) ?? ""
      unlink(tracePath)
      return trace.split(separator: "\n").filter { $0.contains(" + ") || $0.contains(" > ") }
        .count
    }
    let allocations = try countAllocations { for _ in 0..<rounds { try exercise() } }
    // The control: read() returns a new array each time, so the count must see it.
    let control = try countAllocations {
      for _ in 0..<rounds { sink &+= try memory.read(count: 4)[0] }
    }
    report("rounds", String(rounds))
    report("sink", String(sink))
    report("allocations", String(allocations))
    report("controlAllocations", String(control))
  #else
    fail("shm-alloc-check needs glibc")
  #endif
}

func readFile(_ path: String) throws -> String {
  guard let file = fopen(path, "r") else { return "" }
  defer { fclose(file) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = fread(&chunk, 1, chunk.count, file)
    if n <= 0 { break }
    bytes += chunk[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}
