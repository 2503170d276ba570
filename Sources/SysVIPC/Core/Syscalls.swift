import CSysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// The one layer between the SysVIPC library and the operating system: every System V call,
// every call into the C shim (CSysVIPC) and the other system calls the library makes (threads,
// signals, clocks, `kill`, reading `/proc`) go through a `system_*` function here, and no other
// file of the library makes them (swift-system's pattern; FaultInjectionTests'
// `onlyTheSyscallLayerCallsTheSystem` checks it). Other targets of the package have their own. Each returns what the call returned, with
// errno as the call set it; errors are mapped in one place (`IPCError.system`) and EINTR is
// retried in one place (`retryingInterrupts`).
//
// In debug builds (`ENABLE_MOCKING`, as swift-system) each call first asks the current
// `FaultPlan` whether it is to fail: tests make the Nth call of a given system call fail with a
// given errno, or be interrupted k times (Core/FaultInjection.swift). Release builds compile the
// plain calls only.

/// The System V calls that a ``FaultPlan`` can make fail.
@usableFromInline
enum SystemCallName: String, Sendable, CaseIterable {
  case semget, semop, semtimedop, semctl
  case shmget, shmat, shmdt, shmctl
  case msgget, msgsnd, msgrcv, msgctl
  case ftok
  /// `IPC_INFO` (the limits) and the listing calls (`*_INFO`, `*_STAT_ANY`).
  case ipcInfo
  /// `pthread_create` of a wait thread (Core/WaitThreads.swift).
  case pthreadCreate
}

/// Whether the call is to fail now (debug builds only): sets errno and returns `true`. Inlinable,
/// so that the inlined hot paths of other modules see `false` in release builds, not a call.
@inlinable
@inline(__always)
func injectedFault(_ call: SystemCallName) -> Bool {
  #if ENABLE_MOCKING
    if let plan = FaultPlan.current, let error = plan.fault(for: call) {
      // errno 0 plans only a delay: the call is then made (a thread held just short of the
      // kernel, where a signal finds it outside its wait).
      if error == 0 { return false }
      errno = error
      return true
    }
  #endif
  return false
}

/// A *get call's result, for a plan that checks what a failed constructor left (debug builds).
@inline(__always)
func noteCreated(_ id: Int32) -> Int32 {
  #if ENABLE_MOCKING
    if id >= 0 { FaultPlan.current?.note(id: id) }
  #endif
  return id
}

// MARK: Semaphores

@inline(__always)
func system_semget(_ key: Int32, _ count: Int32, _ flags: Int32) -> Int32 {
  if injectedFault(.semget) { return -1 }
  return noteCreated(semget(key, count, flags))
}

/// `semop` of one operation on semaphore 0: the hot path of acquire and release (the
/// `struct sembuf` is built in C: see `csysvipc_semop1`).
@inlinable
@inline(__always)
func system_semop1(_ id: Int32, _ operation: Int16, _ flags: Int16) -> Int32 {
  if injectedFault(.semop) { return -1 }
  return csysvipc_semop1(id, operation, flags)
}

@inline(__always)
func system_semop(_ id: Int32, _ ops: UnsafeMutableBufferPointer<csysvipc_sembuf>) -> Int32 {
  if injectedFault(.semop) { return -1 }
  return ops.withMemoryRebound(to: sembuf.self) { semop(id, $0.baseAddress, $0.count) }
}

/// Whether this platform has `semtimedop` (Linux); elsewhere timeouts are polled.
#if os(Linux)
  let systemHasSemtimedop = true
#else
  let systemHasSemtimedop = false
#endif

@inline(__always)
func system_semtimedop(
  _ id: Int32, _ ops: UnsafeMutableBufferPointer<csysvipc_sembuf>, _ timeoutNanoseconds: Int64
) -> Int32 {
  #if ENABLE_MOCKING
    FaultPlan.current?.note(timeout: timeoutNanoseconds)
  #endif
  if injectedFault(.semtimedop) { return -1 }
  return csysvipc_semtimedop(id, ops.baseAddress, ops.count, timeoutNanoseconds)
}

/// `semctl` with an int argument or none: `GETVAL`, `SETVAL`, `GETPID`, `GETNCNT`, `GETZCNT`,
/// `IPC_RMID`.
func system_semctl(_ id: Int32, _ index: Int32, _ command: Int32, _ value: Int32 = 0) -> Int32 {
  if injectedFault(.semctl) { return -1 }
  return csysvipc_semctl_value(id, index, command, value)
}

/// `semctl` with an array: `GETALL`, `SETALL`.
func system_semctl(_ id: Int32, _ command: Int32, _ values: UnsafeMutablePointer<UInt16>) -> Int32 {
  if injectedFault(.semctl) { return -1 }
  return csysvipc_semctl_array(id, command, values)
}

func system_semctl_stat(_ id: Int32, _ out: inout csysvipc_sem_status) -> Int32 {
  if injectedFault(.semctl) { return -1 }
  return csysvipc_sem_stat(id, &out)
}

/// `IPC_STAT` then `IPC_SET` of owner and mode.
func system_semctl_set(_ id: Int32, _ uid: UInt32, _ gid: UInt32, _ mode: UInt32) -> Int32 {
  if injectedFault(.semctl) { return -1 }
  return csysvipc_sem_set(id, uid, gid, mode)
}

// MARK: Shared memory

@inline(__always)
func system_shmget(_ key: Int32, _ size: Int, _ flags: Int32) -> Int32 {
  if injectedFault(.shmget) { return -1 }
  return noteCreated(shmget(key, size, flags))
}

@inline(__always)
func system_shmat(_ id: Int32, _ address: UnsafeRawPointer?, _ flags: Int32) -> Int {
  if injectedFault(.shmat) { return -1 }
  return Int(bitPattern: shmat(id, address, flags))
}

@inline(__always)
func system_shmdt(_ address: UInt) -> Int32 {
  if injectedFault(.shmdt) { return -1 }
  return shmdt(UnsafeRawPointer(bitPattern: address))
}

func system_shmctl_stat(_ id: Int32, _ out: inout csysvipc_shm_status) -> Int32 {
  if injectedFault(.shmctl) { return -1 }
  return csysvipc_shm_stat(id, &out)
}

func system_shmctl_set(_ id: Int32, _ uid: UInt32, _ gid: UInt32, _ mode: UInt32) -> Int32 {
  if injectedFault(.shmctl) { return -1 }
  return csysvipc_shm_set(id, uid, gid, mode)
}

func system_shmctl_remove(_ id: Int32) -> Int32 {
  if injectedFault(.shmctl) { return -1 }
  return shmctl(id, IPC_RMID, nil)
}

// MARK: Message queues

@inline(__always)
func system_msgget(_ key: Int32, _ flags: Int32) -> Int32 {
  if injectedFault(.msgget) { return -1 }
  return noteCreated(msgget(key, flags))
}

/// msgsnd of `size` text bytes at `message`, which points to the type (a C long).
@inline(__always)
func system_msgsnd(_ id: Int32, _ message: UnsafeRawPointer, _ size: Int, _ flags: Int32) -> Int32 {
  if injectedFault(.msgsnd) { return -1 }
  return msgsnd(id, message, size, flags)
}

/// msgrcv into `message` (type, then up to `size` text bytes); returns the text's length.
@inline(__always)
func system_msgrcv(
  _ id: Int32, _ message: UnsafeMutableRawPointer, _ size: Int, _ type: CLong, _ flags: Int32
) -> Int {
  if injectedFault(.msgrcv) { return -1 }
  return msgrcv(id, message, size, type, flags)
}

func system_msgctl_stat(_ id: Int32, _ out: inout csysvipc_msg_status) -> Int32 {
  if injectedFault(.msgctl) { return -1 }
  return csysvipc_msg_stat(id, &out)
}

/// `IPC_SET` of owner, mode and `msg_qbytes` (after the caller's `IPC_STAT`).
func system_msgctl_set(
  _ id: Int32, _ uid: UInt32, _ gid: UInt32, _ mode: UInt32, _ qbytes: UInt64
) -> Int32 {
  if injectedFault(.msgctl) { return -1 }
  return csysvipc_msg_set(id, uid, gid, mode, qbytes)
}

func system_msgctl_remove(_ id: Int32) -> Int32 {
  if injectedFault(.msgctl) { return -1 }
  return msgctl(id, IPC_RMID, nil)
}

// MARK: The system

func system_ftok(_ path: String, _ projectID: Int32) -> Int32 {
  if injectedFault(.ftok) { return -1 }
  return ftok(path, projectID)
}

func system_limits(_ out: inout csysvipc_limits) -> Int32 {
  if injectedFault(.ipcInfo) { return -1 }
  return csysvipc_limits_read(&out)
}

/// The highest index in use in the kernel's table of `kind` (`*_INFO`).
func system_maxIndex(_ kind: IPCObjectKind) -> Int32 {
  if injectedFault(.ipcInfo) { return -1 }
  switch kind {
  case .semaphore: return csysvipc_sem_max_index()
  case .sharedMemory: return csysvipc_shm_max_index()
  case .messageQueue: return csysvipc_msg_max_index()
  }
}

func system_statIndex(_ index: Int32, _ out: inout csysvipc_sem_status) -> Int32 {
  if injectedFault(.ipcInfo) { return -1 }
  return csysvipc_sem_stat_index(index, &out)
}

func system_statIndex(_ index: Int32, _ out: inout csysvipc_shm_status) -> Int32 {
  if injectedFault(.ipcInfo) { return -1 }
  return csysvipc_shm_stat_index(index, &out)
}

func system_statIndex(_ index: Int32, _ out: inout csysvipc_msg_status) -> Int32 {
  if injectedFault(.ipcInfo) { return -1 }
  return csysvipc_msg_stat_index(index, &out)
}

/// `MSG_EXCEPT`, or 0 where there is none.
let systemMessageExcept = csysvipc_msg_except()

/// This thread's message scratch block (see `csysvipc_scratch_acquire`).
@inline(__always)
func system_scratchAcquire(_ size: Int) -> UnsafeMutableRawPointer? {
  csysvipc_scratch_acquire(size)
}

@inline(__always)
func system_scratchRelease(_ block: UnsafeMutableRawPointer) {
  csysvipc_scratch_release(block)
}

/// The size of each thread's scratch block.
let systemScratchBytes = Int(CSYSVIPC_THREAD_SCRATCH)

// MARK: Threads and signals (the waits: Core/WaitThreads.swift, Core/WaitSignal.swift)

/// Starts a detached thread with a stack of `stackSize` bytes running `body`; returns 0 or
/// `pthread_create`'s error number.
func system_threadCreate(stackSize: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
  #if ENABLE_MOCKING
    if let plan = FaultPlan.current, let error = plan.fault(for: .pthreadCreate) { return error }
  #endif
  final class Box: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
  }
  let box = Unmanaged.passRetained(Box(body)).toOpaque()
  var attributes = pthread_attr_t()
  pthread_attr_init(&attributes)
  defer { pthread_attr_destroy(&attributes) }
  pthread_attr_setstacksize(&attributes, stackSize)
  pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
  #if canImport(Glibc)
    var thread = pthread_t()
  #else
    var thread: pthread_t? = nil
  #endif
  let rc = pthread_create(
    &thread, &attributes,
    { raw in
      #if canImport(Glibc) || canImport(Musl)
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
      #else
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
      #endif
      box.body()
      return nil
    }, box)
  if rc != 0 { Unmanaged<Box>.fromOpaque(box).release() }
  return rc
}

/// A pthread mutex and condition variable (Synchronization has no condition variable): the
/// wait pool's and the timer's sleeps (Core/WaitThreads.swift).
@inline(__always)
func system_mutexInit(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
  pthread_mutex_init(mutex, nil)
}
@inline(__always)
func system_mutexDestroy(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
  pthread_mutex_destroy(mutex)
}
@inline(__always)
func system_mutexLock(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
  pthread_mutex_lock(mutex)
}
@inline(__always)
func system_mutexUnlock(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
  pthread_mutex_unlock(mutex)
}

/// A condition variable on the monotonic clock where the platform has one (Linux).
func system_conditionInit(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
  #if os(Linux)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    pthread_cond_init(condition, &attributes)
    pthread_condattr_destroy(&attributes)
  #else
    pthread_cond_init(condition, nil)
  #endif
}
@inline(__always)
func system_conditionDestroy(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
  pthread_cond_destroy(condition)
}
@inline(__always)
func system_conditionSignal(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
  pthread_cond_signal(condition)
}
@inline(__always)
func system_conditionWait(
  _ condition: UnsafeMutablePointer<pthread_cond_t>, _ mutex: UnsafeMutablePointer<pthread_mutex_t>
) {
  pthread_cond_wait(condition, mutex)
}

/// Waits on `condition` at most until `deadline` (monotonic nanoseconds); may return early.
func system_conditionWait(
  _ condition: UnsafeMutablePointer<pthread_cond_t>, _ mutex: UnsafeMutablePointer<pthread_mutex_t>,
  untilNanoseconds deadline: Int64
) {
  #if os(Linux)
    var time = timespec(
      tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    pthread_cond_timedwait(condition, mutex, &time)
  #else
    let left = max(0, deadline - system_monotonicNanoseconds())
    var time = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
    pthread_cond_timedwait_relative_np(condition, mutex, &time)
  #endif
}

/// A thread-specific value's key (`pthread_key_create`, no destructor), or `nil` when the
/// process has none left.
func system_threadKeyCreate() -> pthread_key_t? {
  var key = pthread_key_t()
  return pthread_key_create(&key, nil) == 0 ? key : nil
}
@inline(__always)
func system_threadSetSpecific(_ key: pthread_key_t, _ value: UnsafeRawPointer?) {
  pthread_setspecific(key, value)
}
@inline(__always)
func system_threadGetSpecific(_ key: pthread_key_t) -> UnsafeMutableRawPointer? {
  pthread_getspecific(key)
}

/// `pthread_self`, as one word to keep in an atomic: `pthread_t` is an integer on glibc and a
/// pointer on Darwin and musl, one word everywhere, and never 0 or 1 (it addresses the thread's
/// descriptor).
@inline(__always)
func system_threadSelfWord() -> UInt { bitCast(pthread_self(), to: UInt.self) }

/// `pthread_kill`: sends `signal` to the thread that ``system_threadSelfWord()`` named.
@inline(__always)
func system_threadKill(word thread: UInt, _ signal: Int32) {
  pthread_kill(bitCast(thread, to: pthread_t.self), signal)
}

/// `unsafeBitCast` between `pthread_t` and `UInt`, which are the same type on glibc only.
@inline(__always)
private func bitCast<From, To>(_ value: From, to: To.Type) -> To {
  unsafeBitCast(value, to: To.self)
}

/// `pthread_sigmask`.
@inline(__always)
func system_threadSignalMask(
  _ how: Int32, _ set: UnsafePointer<sigset_t>?, _ old: UnsafeMutablePointer<sigset_t>?
) {
  pthread_sigmask(how, set, old)
}

/// `sigaction`: installs `handler` (no-op handlers only: the wait signal's) with `flags`, or
/// (`handler` nil) reads the current action; returns whether the handler is the default.
func system_signalAction(
  _ signal: Int32, install handler: (@convention(c) (Int32) -> Void)?, flags: Int32
) -> (ok: Bool, isDefault: Bool) {
  var action = sigaction()
  var old = sigaction()
  if let handler {
    #if canImport(Glibc)
      action.__sigaction_handler.sa_handler = handler
    #elseif canImport(Musl)
      action.__sa_handler.sa_handler = handler
    #else
      action.__sigaction_u.__sa_handler = handler
    #endif
    sigemptyset(&action.sa_mask)
    action.sa_flags = flags
  }
  let rc = handler == nil ? sigaction(signal, nil, &old) : sigaction(signal, &action, &old)
  #if canImport(Glibc)
    let current = old.__sigaction_handler.sa_handler
  #elseif canImport(Musl)
    let current = old.__sa_handler.sa_handler
  #else
    let current = old.__sigaction_u.__sa_handler
  #endif
  return (rc == 0, current == nil)  // SIG_DFL is the null handler
}

// MARK: Time

/// CLOCK_MONOTONIC, nanoseconds. Out of line: inlined, its `timespec` (a local whose address is
/// taken) would give every caller a stack-protector check, timed path or not.
@inline(never)
func system_monotonicNanoseconds() -> Int64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Sleeps the calling thread for up to `nanoseconds` (`nanosleep`, resumed after signals).
func system_sleep(_ nanoseconds: Int64) {
  var request = timespec(
    tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
  var remaining = timespec()
  while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

/// `sched_yield`.
@inline(__always)
func system_yield() { sched_yield() }

// MARK: Processes

/// `kill(pid, signal)`: 0, or -1 with errno (`kill(pid, 0)` only asks whether `pid` exists).
func system_kill(_ pid: pid_t, _ signal: Int32) -> Int32 { kill(pid, signal) }

/// Reads up to `buffer.count` bytes of the file at `path` (a NUL-terminated C string) from its
/// start (`open`, one `read`, `close`): the count read, or -1 with errno. Allocates nothing.
func system_readFile(_ path: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer)
  -> Int
{
  let descriptor = open(path, O_RDONLY | O_CLOEXEC)
  guard descriptor >= 0 else { return -1 }
  let count = read(descriptor, buffer.baseAddress, buffer.count)
  let saved = errno
  close(descriptor)
  errno = saved
  return count
}

// MARK: Memory

/// `malloc`: a block aligned for any C type, or `nil` when memory runs out (where Swift's
/// allocators trap).
func system_malloc(_ size: Int) -> UnsafeMutableRawPointer? { malloc(size) }

/// `free`.
func system_free(_ block: UnsafeMutableRawPointer?) { free(block) }

/// The page size (`sysconf(_SC_PAGESIZE)`).
func system_pageSize() -> Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

/// The kernel's limits (`system_limits`), or `nil` where they cannot be read.
func systemLimits() -> csysvipc_limits? {
  var limits = csysvipc_limits()
  return system_limits(&limits) == 0 ? limits : nil
}
