import WirecapPcap

// Fuzzes BPFCompiler.compile over arbitrary expression strings (libpcap's pcap_compile behind
// it), optimised and not, at two snap lengths. Any PcapError is fine; a trap or a crash is a
// finding, and so is a program that compiles to no instructions.

nonisolated(unsafe) var sink: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    // The first byte picks the options; the rest is the expression (decoded as UTF-8, invalid
    // sequences repaired, as a string from the command line would be).
    let options = data[0]
    let expression = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    let snapLength = options & 1 == 0 ? 262_144 : 96
    let optimize = options & 2 == 0
    guard let program = try? BPFCompiler.compile(expression, snapLength: snapLength, optimize: optimize) else { return 0 }
    precondition(!program.isEmpty, "an empty program for \(expression.debugDescription)")
    sink &+= UInt64(program.count)
    return 0
}
