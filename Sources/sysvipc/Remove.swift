import ArgumentParser
import ProgramSupport
import SysVIPC

extension SysVIPCTool {
  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove objects (IPC_RMID): by id or key, every stale one, or all of a kind.",
      discussion: """
        remove KIND ID... [--key KEY]...   the objects named
        remove --stale [--older-than D]    the stale ones (`list --stale`)
        remove --all --kind KIND           every object of the kind(s)
        The filters of `list` (--kind, --mine, --owner, --key) narrow --stale and --all. \
        One line is printed per object removed ("removed ...") or, with --dry-run, that would \
        be ("would remove ..."). Every object is tried: one that cannot be removed is reported \
        on standard error and the status is 1. A shared memory segment lives on until its last \
        detach.
        """)

    @Argument(
      help: ArgumentHelp("The kind of the objects named by id: sem, shm or mq.", valueName: "kind"))
    var positionalKind: KindArgument?

    @Argument(help: "The ids of the objects to remove.")
    var ids: [Int32] = []

    @OptionGroup var filter: ObjectFilter

    @Flag(help: "Every object of the kind(s) given with --kind (or KIND), after the filters.")
    var all = false

    @Flag(help: "Print what would be removed, and remove nothing.")
    var dryRun = false

    func validate() throws {
      if all && filter.stale { throw ValidationError("Give --all or --stale, not both.") }
      if all && filter.kind.isEmpty && positionalKind == nil {
        throw ValidationError("--all needs --kind (sem, shm or mq).")
      }
      if (all || filter.stale) && !ids.isEmpty {
        throw ValidationError("Ids go without --all and --stale.")
      }
      if !all && !filter.stale {
        if positionalKind == nil { throw ValidationError("Give the kind (sem, shm or mq).") }
        if ids.isEmpty && filter.keys.isEmpty {
          throw ValidationError("Give at least one id or --key (or --stale, or --all).")
        }
        if filter.mine || filter.owner != nil || !filter.kind.isEmpty {
          throw ValidationError("--mine, --owner and --kind go with --all or --stale.")
        }
      }
    }

    func run() throws {
      var failures = 0
      var targets: [(IPCObjectKind, Int32, String)] = []
      if all || filter.stale {
        let kinds = positionalKind.map { [$0.kind] } ?? filter.kinds
        for (object, staleness) in try filter.objects(kinds: kinds) {
          targets.append((object.kind, object.id, describe(object, staleness)))
        }
      } else {
        let kind = positionalKind!.kind
        for id in ids { targets.append((kind, id, "\(kind.name) \(id)")) }
        if !filter.keys.isEmpty {
          let objects = try IPCSystem.objects(of: kind)
          for key in filter.keys.map(\.key) {
            if let object = objects.first(where: { $0.key == key }) {
              targets.append((kind, object.id, describe(object, nil)))
            } else {
              printError("sysvipc: no \(kind.name) with key \(key)")
              failures += 1
            }
          }
        }
      }
      for (kind, id, description) in targets {
        if dryRun {
          print("would remove \(description)")
          continue
        }
        do {
          try removeObject(kind, id: id)
          print("removed \(description)")
        } catch {
          printError("sysvipc: \(error)")
          failures += 1
        }
      }
      if failures > 0 { throw ExitCode(SysVIPCTool.Status.failure) }
    }

    /// `semaphore 12 (key 0x..., owner root): <why it is stale>`.
    private func describe(_ object: IPCObjectInfo, _ staleness: IPCStaleness?) -> String {
      let base =
        "\(object.kind.name) \(object.id) (key \(object.key), owner \(userName(object.uid)))"
      return staleness.map { "\(base): \($0.reason)" } ?? base
    }
  }
}
