#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The sanitizer this test process was built with (`swift build --sanitize=thread|address`,
/// Scripts/sanitize.sh), found by its runtime's entry point: the helper executable is built
/// the same way. `nil` in an ordinary build.
///
/// A few tests measure what a sanitizer changes on purpose (the address space it reserves, the
/// allocator it replaces, a 5–15× slowdown): they skip, saying why, or widen a bound.
let activeSanitizer: String? = {
  let handle = dlopen(nil, RTLD_NOW)
  defer { if let handle { dlclose(handle) } }
  if dlsym(handle, "__tsan_init") != nil { return "ThreadSanitizer" }
  if dlsym(handle, "__asan_init") != nil { return "AddressSanitizer" }
  return nil
}()

/// Whether the process runs under a sanitizer (see ``activeSanitizer``).
var underSanitizer: Bool { activeSanitizer != nil }
