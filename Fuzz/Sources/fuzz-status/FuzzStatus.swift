import CSysVIPC
// Fuzzes the decoding of the kernel's status structures: arbitrary bytes as the flattened
// semid_ds, shmid_ds and msqid_ds that CSysVIPC copies out of IPC_STAT, decoded as
// `IPCSystem.objects()` and `SharedMemory.status()` decode them. Nothing may trap, and what
// comes out must keep the invariants the API documents.
import FuzzSupport

@testable import SysVIPC

/// `T` filled from `bytes` (zeros past their end).
func load<T>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer) -> T {
  var buffer = [UInt8](repeating: 0, count: MemoryLayout<T>.size)
  buffer.withUnsafeMutableBytes {
    $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix($0.count)))
  }
  return buffer.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStatus(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  let bytes = UnsafeRawBufferPointer(start: data, count: size)
  guard let selector = bytes.first else { return 0 }
  let rest = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
  let id = Int32(truncatingIfNeeded: size)
  let info: IPCObjectInfo
  switch selector % 4 {
  case 0:
    let status = load(csysvipc_sem_status.self, rest)
    info = IPCObjectInfo(semaphore: id, status)
    check(info.semaphoreCount.map { $0 >= 0 } ?? false, "semaphoreCount \(info)")
  case 1:
    let status = load(csysvipc_shm_status.self, rest)
    info = IPCObjectInfo(sharedMemory: id, status)
    check(info.size.map { $0 >= 0 } ?? false, "size \(info)")
    check(info.attachCount.map { $0 >= 0 } ?? false, "attachCount \(info)")
    let decoded = SharedMemory.Status(status, id: id)
    check(decoded.size >= 0 && decoded.numberAttached >= 0, "SharedMemory.Status \(decoded)")
    check(decoded.isMarkedForRemoval == info.isMarkedForRemoval, "SHM_DEST \(decoded)")
    check(decoded.mode.rawValue <= 0o777, "mode \(decoded)")
    _ = (decoded.lastAttachTime, decoded.lastDetachTime, decoded.lastChangeTime)
  case 2:
    let status = load(csysvipc_msg_status.self, rest)
    info = IPCObjectInfo(messageQueue: id, status)
    check(info.messageCount.map { $0 >= 0 } ?? false, "messageCount \(info)")
    check(info.messageBytes.map { $0 >= 0 } ?? false, "messageBytes \(info)")
    check(info.maxQueueBytes.map { $0 >= 0 } ?? false, "maxQueueBytes \(info)")
  default:
    return 0
  }
  check(info.mode.rawValue <= 0o777, "mode \(info)")
  check(info.id == id, "id \(info)")
  _ = info.key.description
  return 0
}
