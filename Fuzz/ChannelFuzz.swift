// The channel's libFuzzer target: random segments (headers and rings) for the reader and the
// writer. Built and run by Scripts/fuzz-channel.sh with -sanitize=fuzzer,address, together with
// Sources/SysVIPCChannel/{ChannelLayout,ChannelRing,ChannelFuzzing}.swift.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChannel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
  let outcome = ChannelFuzzing.exercise(UnsafeRawBufferPointer(start: data, count: size))
  if outcome.violations != 0 { fatalError("channel invariant violated: \(outcome)") }
  return 0
}
