// Platforms where System V IPC cannot work stop here, at compile time, with the reason, rather
// than at run time (see the PlatformNotes article).

#if os(Android)
  #error(
    "SysVIPC does not support Android: Android does not support System V IPC, and its SELinux policy refuses semget, shmget and msgget to apps (a process that makes these calls is denied or killed rather than given an object). Use ASharedMemory and binder on Android."
  )
#elseif os(Windows) || os(WASI)
  #error("SysVIPC needs System V IPC (semget, shmget, msgget), which this platform does not have.")
#endif
