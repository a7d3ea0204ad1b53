import FuzzSupport
import Glibc
import WirecapTraffic

// Fuzzes replay's TraceLoader.load(path:): the input is written to a file on tmpfs and loaded;
// every record of a trace that loads is touched, with its offset. Any TrafficError is fine; a
// trap (an overflow in the schedule, say) or a crash is a finding.

nonisolated(unsafe) var inputPath = inputFilePath("trace")
nonisolated(unsafe) var sink: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard writeInput(data, size, to: inputPath) else { return 0 }
    guard let trace = try? TraceLoader.load(path: inputPath) else { return 0 }
    var total = UInt64(trace.totalBytes) &+ UInt64(trace.longest) &+ UInt64(trace.cutShort) &+ UInt64(bitPattern: trace.span)
    var bytes = 0
    var previous: Int64 = 0
    for index in 0..<trace.count {
        let record = trace.record(index)
        for byte in record { total &+= UInt64(byte) }
        bytes += record.count
        let offset = trace.offset(index)
        // The schedule never runs backwards and stays within the trace's bound.
        precondition(offset >= previous && offset <= TraceLoader.longestSpan, "offset \(offset) after \(previous)")
        previous = offset
    }
    precondition(bytes == trace.totalBytes, "records hold \(bytes) bytes, the trace says \(trace.totalBytes)")
    sink &+= total
    return 0
}
