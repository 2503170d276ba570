import SysVIPC

/// System-wide commands (sys-...): listing, limits, leak checks.
func systemCommand(_ command: String, _ args: inout Arguments) throws {
  switch command {
  default:
    fail("unknown command \(command)")
  }
}
