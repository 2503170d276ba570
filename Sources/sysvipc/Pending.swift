// TEMPORARY until MessageQueue is merged: stand-ins with the API.md shapes.
import SysVIPC

private let notYet = IPCError(.internal, "not merged yet")

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
