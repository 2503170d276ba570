import ArgumentParser
import SysVIPC

extension SysVIPCTool {
  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create an object and print its id.",
      discussion: """
        Without --key, an unused random key is drawn. With --key, the object must not exist \
        yet (exit status 1 when it does), unless --or-open is given: then an existing object \
        is opened and its id printed, and --value, --size and --max-bytes apply only to an \
        object this call creates. Semaphores are opened or created race-free: of scripts \
        racing to create one, exactly one sets the values, and the others wait (up to 10 s) \
        until it has (SemaphoreSet.openOrCreate).
        """)

    @Argument(help: "The kind of object: sem, shm or mq.")
    var kind: KindArgument

    @Option(help: "The key (decimal, or hex with 0x); a random unused key when omitted.")
    var key: KeyArgument?

    @Option(help: "Permission bits, in octal.")
    var mode = ModeArgument(0o600)

    @Flag(help: "With --key: open the object when it exists already.")
    var orOpen = false

    @Option(help: "sem: the initial value of each semaphore.")
    var value: Int?

    @Option(help: "sem: the number of semaphores in the set.")
    var count: Int?

    @Option(
      help: """
        shm: the size: bytes, or with ipcmk's suffixes (4K = 4KiB = 4096, 4KB = 4000; M, G, \
        T, ...). One page when omitted.
        """)
    var size: SizeArgument?

    @Option(help: "mq: the most bytes a new queue may hold (msg_qbytes).")
    var maxBytes: Int?

    @Flag(help: "Print the key (in hex) after the id.")
    var printKey = false

    func validate() throws {
      if orOpen && key == nil { throw ValidationError("--or-open needs --key.") }
      if kind.kind != .semaphore && (value != nil || count != nil) {
        throw ValidationError("--value and --count are for semaphores.")
      }
      if kind.kind != .sharedMemory && size != nil {
        throw ValidationError("--size is for shared memory.")
      }
      if kind.kind != .messageQueue && maxBytes != nil {
        throw ValidationError("--max-bytes is for message queues.")
      }
    }

    func run() throws {
      // --or-open opens only after an exclusive create failed (openOrCreate below), so that
      // the call knows whether the object is its own.
      let flags: IPCFlags = .createExclusive
      let (id, createdKey): (Int32, IPCKey)
      switch kind.kind {
      case .semaphore:
        let count = self.count ?? 1
        let values = [Int](repeating: value ?? 0, count: max(count, 0))
        if let key = key?.key, orOpen {
          let set = try SemaphoreSet.openOrCreate(
            key: key, count: count, initialValues: values, mode: mode.mode)
          (id, createdKey) = (set.id, set.key)
        } else {
          let set = try SemaphoreSet(key: key?.key, count: count, flags: flags, mode: mode.mode)
          do {
            if values.contains(where: { $0 != 0 }) { try set.setValues(values) }
            // One semop that changes nothing sets sem_otime, the mark that
            // SemaphoreSet.openOrCreate (and `create --or-open`) waits for.
            let (first, second) = (values.first ?? 0) > 0 ? (-1, 1) : (1, -1)
            try set.apply([.init(index: 0, delta: first), .init(index: 0, delta: second)])
          } catch {
            try? set.remove()
            throw error
          }
          (id, createdKey) = (set.id, set.key)
        }
      case .sharedMemory:
        let memory = try openOrCreate(
          create: { () throws(IPCError) in
            try SharedMemory(key: key?.key, flags: flags, mode: mode.mode, size: size?.bytes)
          },
          open: { (key) throws(IPCError) in try SharedMemory(key: key, mode: mode.mode) })
        (id, createdKey) = (memory.object.id, memory.object.key)
      case .messageQueue:
        let (queue, created) = try openOrCreate(
          create: { () throws(IPCError) in
            try MessageQueue(key: key?.key, flags: flags, mode: mode.mode)
          },
          open: { (key) throws(IPCError) in try MessageQueue(key: key, mode: mode.mode) })
        // --max-bytes is for a queue this call created: an opened one keeps its capacity.
        if let maxBytes, created {
          do {
            try queue.setMaxSize(maxBytes)
          } catch {
            try? queue.remove()
            throw error
          }
        }
        (id, createdKey) = (queue.id, queue.key)
      }
      print(printKey ? "\(id) \(createdKey)" : "\(id)")
    }

    /// Creates with `create` (exclusively); with --or-open, an object that exists already is
    /// opened with `open` instead, untouched: the size and capacity options are for a new one.
    /// An object removed between the two calls is created again.
    private func openOrCreate<T>(
      create: () throws(IPCError) -> T, open: (IPCKey) throws(IPCError) -> T
    ) throws(IPCError) -> (object: T, created: Bool) {
      guard orOpen, let key = key?.key else { return (try create(), true) }
      while true {
        do throws(IPCError) {
          return (try create(), true)
        } catch  where error.kind == .existential {
          do throws(IPCError) {
            return (try open(key), false)
          } catch  where error.kind == .existential {
            continue  // removed meanwhile: create it
          }
        }
      }
    }
  }
}
