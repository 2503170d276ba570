import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The address ranges that this process's ``SharedMemory`` attachments hold: every `shmat` and
/// `shmdt` of ``SharedMemory`` goes through here, so that ``SharedMemory/AttachFlags/remap``
/// (`SHM_REMAP`, which replaces whatever is mapped at an address) is refused over a mapping
/// that another `SharedMemory` still uses: the kernel would silently swap that object's bytes
/// and its later `shmdt` would unmap the new mapping under the other object's feet.
enum AttachedRanges {
  /// Start address → end address (exclusive, page-rounded), under ``locked``; `shmat` and
  /// `shmdt` run under it too, so that a check and the mapping it allows cannot be separated.
  nonisolated(unsafe) private static var table: [UInt: UInt] = [:]
  /// The lock of ``table``: an atomic flag rather than a `Mutex`, whose lock ThreadSanitizer does
  /// not see in debug builds (it then reports every access to the table as a race). Held only
  /// for a `shmat` or `shmdt` of this process, never on an access path.
  private static let locked = Atomic<Bool>(false)

  private static func withRanges<R>(_ body: (inout [UInt: UInt]) -> R) -> R {
    while !locked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
      system_yield()
    }
    defer { locked.store(false, ordering: .releasing) }
    return body(&table)
  }

  /// The range a mapping of `size` bytes at `address` covers (`SHM_RND` rounds the address
  /// down to `SHMLBA`, the page size on Linux).
  static func range(at address: UInt, size: Int, rounding: Bool) -> Range<UInt> {
    let page = UInt(SharedMemory.pageSize)
    let start = rounding ? address & ~(page - 1) : address
    let length = (UInt(max(size, 1)) + page - 1) & ~(page - 1)
    let (end, overflow) = start.addingReportingOverflow(length)
    return start..<(overflow ? .max : end)
  }

  /// The attachment, other than the one at `except`, whose range overlaps `range`.
  private static func holder(of range: Range<UInt>, except: UInt, in ranges: [UInt: UInt])
    -> UInt?
  {
    ranges.first { start, end in
      start != except && start < range.upperBound && range.lowerBound < end
    }?
    .key
  }

  /// Refuses `SHM_REMAP` over a range another attachment holds (`except`: the caller's own
  /// mapping, which it replaces).
  static func checkRemap(_ range: Range<UInt>, except: UInt, id: Int32) throws(IPCError) {
    if let holder = withRanges({ holder(of: range, except: except, in: $0) }) {
      throw refusal(range, holder, id: id)
    }
  }

  /// `shmat`, recording the new mapping; `shmat`'s result (-1 with errno on failure).
  static func map(id: Int32, address: UnsafeRawPointer?, flags: SharedMemory.AttachFlags, size: Int)
    -> Int
  {
    withRanges { ranges in
      let remap = !SharedMemory.AttachFlags.remap.isEmpty && flags.contains(.remap)
      if remap, let address {
        let range = range(
          at: UInt(bitPattern: address), size: size, rounding: flags.contains(.roundAddress))
        if holder(of: range, except: 0, in: ranges) != nil {
          errno = EBUSY  // checkRemap reported it before; only a racing attach gets here
          return -1
        }
      }
      let result = system_shmat(id, address, flags.rawValue)
      if result != -1 {
        let start = UInt(bitPattern: result)
        ranges[start] = range(at: start, size: size, rounding: false).upperBound
      }
      return result
    }
  }

  /// `shmdt`, forgetting the mapping; `shmdt`'s result.
  static func unmap(_ address: UInt) -> Int32 {
    withRanges { ranges in
      ranges[address] = nil
      return system_shmdt(address)
    }
  }

  private static func refusal(_ range: Range<UInt>, _ holder: UInt, id: Int32) -> IPCError {
    IPCError(
      .invalidArgument,
      "shmat on shared memory \(id): .remap (SHM_REMAP) at 0x\(String(range.lowerBound, radix: 16)) "
        + "would replace the mapping of another SharedMemory attached at "
        + "0x\(String(holder, radix: 16)); detach it first")
  }
}
