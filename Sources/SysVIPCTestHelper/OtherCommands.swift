import SysVIPC

/// Commands that are not about one object kind (sets, the system, load tests).
func otherCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  case "whoami":
    break
  default:
    fail("unknown command \(command)")
  }
}
