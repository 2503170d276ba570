// How often does ftok() give two different files the same key? The reference's
// ftok_experiment in Swift: walks a directory, computes every file's key, and reports the keys
// that collide. Unreadable directories, broken links and vanished files are counted, not fatal.
//
//   swift run ftok_experiment [DIRECTORY] [--project-id N] [--show N]
import ProgramSupport
import SysVIPC

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
  guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else {
    return nil
  }
  defer { arguments.removeSubrange(index...(index + 1)) }
  return arguments[index + 1]
}
let projectID = option("project-id").flatMap(Int32.init) ?? 42
let show = option("show").flatMap(Int.init) ?? 20
guard arguments.count <= 1, (1...255).contains(projectID), show >= 0 else {
  printError("usage: ftok_experiment [DIRECTORY] [--project-id 1...255] [--show N]")
  exit(2)
}
let start = arguments.first ?? "."

var files: [IPCKey: [String]] = [:]
var fileCount = 0
var skipped: [String: Int] = [:]

/// Walks `directory` without following links to directories (no loops); every entry that is
/// not a directory gets a key. `ftok` follows links, so a broken link is skipped.
@MainActor func walk(_ directory: String) {
  guard let handle = opendir(directory) else {
    skipped["unreadable directory", default: 0] += 1
    return
  }
  defer { closedir(handle) }
  while let entry = readdir(handle) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
      String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    if name == "." || name == ".." { continue }
    let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
    var info = stat()
    guard lstat(path, &info) == 0 else {
      skipped["vanished", default: 0] += 1
      continue
    }
    if info.st_mode & S_IFMT == S_IFDIR {
      walk(path)
      continue
    }
    do {
      let key = try IPCKey(path: path, projectID: projectID)
      files[key, default: []].append(path)
      fileCount += 1
    } catch {
      let reason =
        info.st_mode & S_IFMT == S_IFLNK && error.kind == .existential
        ? "broken link" : "ftok failed (\(error.kind))"
      skipped[reason, default: 0] += 1
    }
  }
}

print("Scanning \(start) with project id \(projectID)...")
var info = stat()
guard stat(start, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
  printError("ftok_experiment: \(start) is not a directory")
  exit(1)
}
walk(start)

let collisions = files.filter { $0.value.count > 1 }.sorted { $0.key.rawValue < $1.key.rawValue }
let colliding = collisions.reduce(0) { $0 + $1.value.count }
for (key, paths) in collisions.prefix(show) {
  print("\(key): \(paths.joined(separator: "  "))")
}
if collisions.count > show { print("... and \(collisions.count - show) more keys") }
for (reason, count) in skipped.sorted(by: { $0.key < $1.key }) {
  print("skipped \(count): \(reason)")
}
print(
  "Out of \(fileCount) files, \(colliding) share their key with another file "
    + "(\(collisions.count) keys used more than once; \(files.count) distinct keys).")
