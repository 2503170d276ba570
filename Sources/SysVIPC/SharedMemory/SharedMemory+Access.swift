#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// Reading, writing, and the zero-copy views (Python's buffer protocol).
//
// Every access goes through the object's ``AccessGate``: one atomic add to enter, one atomic
// subtract to leave, no lock; so no access outlives its mapping, and a body may call back into
// this object (read, write, nested views) without deadlocking. None of these paths allocates.
extension SharedMemory {
  /// Starts an access: the whole segment, or an error when detached (or read-only, for a
  /// mutable access). Pair with ``endAccess()``.
  @inline(__always)
  private func beginAccess(mutable: Bool, _ call: StaticString) throws(IPCError)
    -> UnsafeMutableRawBufferPointer
  {
    switch gate.enter(mutable: mutable) {
    case .admitted(let address):
      return UnsafeMutableRawBufferPointer(
        start: UnsafeMutableRawPointer(bitPattern: address), count: size)
    case .notAttached: throw .notAttached(call, id: id)
    case .readOnly: throw .readOnly(call, id: id)
    }
  }

  @inline(__always)
  private func endAccess() { gate.leave() }

  // MARK: Copying

  /// Copies bytes out of the segment's `shmat` mapping.
  ///
  /// - Parameters:
  ///   - count: how many bytes; `0` (the default) means up to the end. A count past the end is
  ///     clipped: the bytes from `offset` to the end are returned.
  ///   - offset: where to start, `0..<size`.
  /// - Throws: ``IPCError/Kind/invalidArgument`` for a negative `count`, or an `offset` that is
  ///   negative or at or past the end; ``IPCError/Kind/notAttached`` when detached.
  public func read(count: Int = 0, offset: Int = 0) throws(IPCError) -> [UInt8] {
    guard count >= 0 else {
      throw .invalid("read on shared memory \(id): count \(count) is negative")
    }
    guard offset >= 0, offset < size else {
      throw .invalid(
        "read on shared memory \(id): offset \(offset) is outside the segment (0..<\(size))")
    }
    let available = size - offset
    let length = count == 0 ? available : Swift.min(count, available)
    let segment = try beginAccess(mutable: false, "read")
    defer { endAccess() }
    return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
      if length > 0 {
        buffer.baseAddress!.initialize(
          from: segment.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self),
          count: length)
      }
      initialized = length
    }
  }

  /// Copies bytes out of the segment into `buffer`, allocating nothing: the copying read for hot
  /// paths (one `memcpy` from the `shmat` mapping).
  ///
  /// - Parameters:
  ///   - buffer: where the bytes go; it is filled up to its size, or up to the segment's end.
  ///   - offset: where to start, `0..<size`.
  /// - Returns: how many bytes were copied: `min(buffer.count, size - offset)`.
  /// - Throws: ``IPCError/Kind/invalidArgument`` for an `offset` that is negative or at or past
  ///   the end; ``IPCError/Kind/notAttached`` when detached.
  public func read(into buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) throws(IPCError)
    -> Int
  {
    guard offset >= 0, offset < size else {
      throw .invalid(
        "read on shared memory \(id): offset \(offset) is outside the segment (0..<\(size))")
    }
    let length = Swift.min(buffer.count, size - offset)
    let segment = try beginAccess(mutable: false, "read")
    defer { endAccess() }
    if length > 0 {
      buffer.baseAddress!.copyMemory(
        from: segment.baseAddress!.advanced(by: offset), byteCount: length)
    }
    return length
  }

  /// Copies bytes into the segment's `shmat` mapping at `offset`. Embedded NUL bytes are written
  /// like any other.
  ///
  /// Contiguous collections (`[UInt8]`, `Data`, `UnsafeRawBufferPointer`, a native string's
  /// `utf8` view) are copied straight in; other sequences are gathered first, so that nothing
  /// is written unless everything fits.
  ///
  /// - Throws: ``IPCError/Kind/invalidArgument`` when `offset` is negative or the bytes would
  ///   pass the end of the segment (nothing is written); ``IPCError/Kind/permissions`` for a
  ///   read-only attachment; ``IPCError/Kind/notAttached`` when detached.
  public func write(_ bytes: some Sequence<UInt8>, offset: Int = 0) throws(IPCError) {
    // withContiguousStorageIfAvailable rethrows untyped errors: carry ours in a Result.
    let copied = bytes.withContiguousStorageIfAvailable { source in
      Result { () throws(IPCError) in try copyIn(UnsafeRawBufferPointer(source), offset: offset) }
    }
    if let copied { return try copied.get() }
    // Gather at most one byte more than fits, so that even an endless sequence is refused.
    guard offset >= 0, offset <= size else {
      throw .invalid(
        "write on shared memory \(id): offset \(offset) is outside the segment (0...\(size))")
    }
    let gathered = Array(bytes.prefix(size - offset + 1))
    try gathered.withUnsafeBytes { source in
      Result { () throws(IPCError) in try copyIn(source, offset: offset) }
    }.get()
  }

  /// `write(_:offset:)` for an array: one `memcpy` into the `shmat` mapping, without the
  /// generic path (the common case, chosen over the generic overload for `[UInt8]`).
  public func write(_ bytes: [UInt8], offset: Int = 0) throws(IPCError) {
    try bytes.withUnsafeBytes { source in
      Result { () throws(IPCError) in try copyIn(source, offset: offset) }
    }.get()
  }

  /// `write(_:offset:)` from raw memory: one `memcpy` into the `shmat` mapping, without the
  /// generic path.
  public func write(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) throws(IPCError) {
    try copyIn(bytes, offset: offset)
  }

  /// Writes a string's UTF-8 bytes (no terminating NUL) into the `shmat` mapping at `offset`, as
  /// `write(_:offset:)`.
  public func write(_ string: String, offset: Int = 0) throws(IPCError) {
    try write(string.utf8, offset: offset)
  }

  private func copyIn(_ source: UnsafeRawBufferPointer, offset: Int) throws(IPCError) {
    guard offset >= 0, offset <= size, source.count <= size - offset else {
      throw .invalid(
        "write on shared memory \(id): \(source.count) bytes at offset \(offset) would pass the "
          + "end of the segment (\(size) bytes)")
    }
    let segment = try beginAccess(mutable: true, "write")
    defer { endAccess() }
    if let base = source.baseAddress, source.count > 0 {
      segment.baseAddress!.advanced(by: offset).copyMemory(from: base, byteCount: source.count)
    }
  }

  // MARK: Zero-copy views

  /// Runs `body` with the segment's bytes in place, the `shmat` mapping itself: no copy
  /// (Python's buffer protocol).
  ///
  /// The buffer covers exactly ``size`` bytes and is valid only during `body`; while `body`
  /// runs, ``detach()`` and ``attach(address:flags:)`` throw ``IPCError/Kind/busy``. Other
  /// processes may change the bytes at any moment.
  ///
  /// This form is for bodies that do not throw or throw ``IPCError``, and keeps typed throws;
  /// another overload takes any throwing body.
  ///
  /// - Throws: ``IPCError/Kind/notAttached`` when detached (`body` does not run), or what
  ///   `body` throws.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws(IPCError) -> R)
    throws(IPCError) -> R
  {
    let segment = try beginAccess(mutable: false, "withUnsafeBytes")
    defer { endAccess() }
    return try body(UnsafeRawBufferPointer(segment))
  }

  /// `withUnsafeBytes(_:)` (the `shmat` mapping) for a body that may throw any error: throws
  /// ``IPCError`` when the
  /// segment cannot be accessed, else what `body` throws.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
    let segment = try beginAccess(mutable: false, "withUnsafeBytes")
    defer { endAccess() }
    return try body(UnsafeRawBufferPointer(segment))
  }

  /// Runs `body` with the segment's bytes in place (the `shmat` mapping), writable: what it
  /// stores is at once in the
  /// segment, for every process. As `withUnsafeBytes(_:)`.
  ///
  /// - Throws: ``IPCError/Kind/permissions`` for a read-only attachment and
  ///   ``IPCError/Kind/notAttached`` when detached (`body` does not run), or what `body`
  ///   throws.
  public func withUnsafeMutableBytes<R>(
    _ body: (UnsafeMutableRawBufferPointer) throws(IPCError) -> R
  ) throws(IPCError) -> R {
    let segment = try beginAccess(mutable: true, "withUnsafeMutableBytes")
    defer { endAccess() }
    return try body(segment)
  }

  /// `withUnsafeMutableBytes(_:)` (the `shmat` mapping) for a body that may throw any error.
  public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R)
    throws -> R
  {
    let segment = try beginAccess(mutable: true, "withUnsafeMutableBytes")
    defer { endAccess() }
    return try body(segment)
  }

  /// Runs `body` with a `RawSpan` over the segment's `shmat` mapping: the safe, bounds-checked
  /// form of `withUnsafeBytes(_:)`. The span cannot escape `body`.
  ///
  /// ```swift
  /// let first = try memory.withBytes { span in span.unsafeLoad(as: UInt32.self) }
  /// ```
  ///
  /// - Throws: ``IPCError/Kind/notAttached`` when detached, or what `body` throws.
  public func withBytes<R>(_ body: (RawSpan) throws(IPCError) -> R) throws(IPCError) -> R {
    let segment = try beginAccess(mutable: false, "withBytes")
    defer { endAccess() }
    return try body(UnsafeRawBufferPointer(segment).bytes)
  }

  /// `withBytes(_:)` (the `shmat` mapping) for a body that may throw any error.
  public func withBytes<R>(_ body: (RawSpan) throws -> R) throws -> R {
    let segment = try beginAccess(mutable: false, "withBytes")
    defer { endAccess() }
    return try body(UnsafeRawBufferPointer(segment).bytes)
  }

  /// Runs `body` with a `MutableRawSpan` over the segment's `shmat` mapping: the safe,
  /// bounds-checked form of `withUnsafeMutableBytes(_:)`.
  ///
  /// ```swift
  /// try memory.withMutableBytes { span in span.storeBytes(of: 42, toByteOffset: 0, as: UInt32.self) }
  /// ```
  ///
  /// - Throws: ``IPCError/Kind/permissions`` for a read-only attachment,
  ///   ``IPCError/Kind/notAttached`` when detached, or what `body` throws.
  public func withMutableBytes<R>(_ body: (inout MutableRawSpan) throws(IPCError) -> R)
    throws(IPCError) -> R
  {
    let segment = try beginAccess(mutable: true, "withMutableBytes")
    defer { endAccess() }
    var span = segment.mutableBytes
    return try body(&span)
  }

  /// `withMutableBytes(_:)` (the `shmat` mapping) for a body that may throw any error.
  public func withMutableBytes<R>(_ body: (inout MutableRawSpan) throws -> R) throws -> R {
    let segment = try beginAccess(mutable: true, "withMutableBytes")
    defer { endAccess() }
    var span = segment.mutableBytes
    return try body(&span)
  }
}
