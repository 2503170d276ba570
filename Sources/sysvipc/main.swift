print("sysvipc: not yet")
