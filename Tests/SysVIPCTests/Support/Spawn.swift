import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Starts `argv[0]` (looked up in PATH) with a clean signal state, standard input from `input`
/// (or /dev/null), standard output to the file `output`, and standard error to `error` (or the
/// same file). The one place the tests start programs: the test runner's threads may block or
/// ignore signals, and a spawned process would inherit both.
func spawnCleanly(
  _ argv: [String], input: String? = nil, output: String, error: String? = nil
) throws -> pid_t {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  if let error {
    posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  } else {
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
  }
  var attributes = posix_spawnattr_t()
  posix_spawnattr_init(&attributes)
  defer { posix_spawnattr_destroy(&attributes) }
  var empty = sigset_t()
  sigemptyset(&empty)
  var all = sigset_t()
  sigfillset(&all)
  posix_spawnattr_setsigmask(&attributes, &empty)
  posix_spawnattr_setsigdefault(&attributes, &all)
  posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
  let cArguments = argv.map { strdup($0) } + [nil]
  defer { cArguments.forEach { free($0) } }
  var child: pid_t = 0
  let rc = posix_spawnp(&child, argv[0], &actions, &attributes, cArguments, environ)
  guard rc == 0 else {
    throw TimedOut(description: "posix_spawn \(argv[0]) failed: \(String(cString: strerror(rc)))")
  }
  return child
}
