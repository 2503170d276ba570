import SysVIPC

/// Message-queue commands (mq-...).
func messageQueueCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  default:
    fail("unknown command \(command)")
  }
}
