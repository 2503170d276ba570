import SysVIPC

/// Shared-memory commands (shm-...).
func sharedMemoryCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  default:
    fail("unknown command \(command)")
  }
}
