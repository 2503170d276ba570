// TEMPORARY until SharedMemory and MessageQueue are merged: stand-ins with the API.md shapes.
import SysVIPC

private let notYet = IPCError(.internal, "not merged yet")

final class SharedMemory: IPCObject {
  static var objectKind: IPCObjectKind { .sharedMemory }
  let key: IPCKey = 0
  let id: Int32 = 0
  let size = 0
  struct AttachFlags: OptionSet {
    let rawValue: Int32
    static let readOnly = AttachFlags(rawValue: 1)
  }
  init(key: IPCKey?, flags: IPCFlags = [], mode: IPCPermissions = 0o600, size: Int? = nil)
    throws(IPCError)
  { throw notYet }
  static func attach(id: Int32, flags: AttachFlags = []) throws(IPCError) -> SharedMemory {
    throw notYet
  }
  func read(count: Int = 0, offset: Int = 0) throws(IPCError) -> [UInt8] { throw notYet }
  func write(_ bytes: some Sequence<UInt8>, offset: Int = 0) throws(IPCError) { throw notYet }
  func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws(IPCError) -> R)
    throws(IPCError) -> R
  { throw notYet }
  static func remove(id: Int32) throws(IPCError) { throw notYet }
}

struct MessageQueue: IPCObject {
  static var objectKind: IPCObjectKind { .messageQueue }
  let key: IPCKey = 0
  let id: Int32 = 0
  init(key: IPCKey?, flags: IPCFlags = [], mode: IPCPermissions = 0o600) throws(IPCError) {
    throw notYet
  }
  init(id: Int32, maxMessageSize: Int = 2048) throws(IPCError) { throw notYet }
  func send(_ bytes: [UInt8], block: Bool = true, type: Int = 1) throws(IPCError) {
    throw notYet
  }
  func receive(block: Bool = true, type: Int = 0) throws(IPCError) -> (
    message: [UInt8], type: Int
  ) { throw notYet }
  func setMaxSize(_ bytes: Int) throws(IPCError) { throw notYet }
  static func remove(id: Int32) throws(IPCError) { throw notYet }
}
