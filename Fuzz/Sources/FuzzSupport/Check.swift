/// Stops the fuzz target with a message when an invariant of its parser does not hold:
/// libFuzzer keeps the input as a crash, as for a trap.
public func check(
  _ condition: Bool, _ what: @autoclosure () -> String, file: StaticString = #file,
  line: UInt = #line
) {
  if !condition { fatalError("invariant broken: \(what())", file: file, line: line) }
}
