import CWirecapPcapABI
import Glibc
import WirecapEngine
import WirecapPcap

// Filters and direction. pcap_compile on a wirecap handle compiles with the real libpcap (so
// the program gets libpcap's program, and libpcap's message for a bad expression), and
// remembers the expression: pcap_setfilter then installs the expression through the facade,
// which compiles it for the kernel of the device (VLAN tests through the kernel's extensions)
// and swaps it in on every queue without a window. pcap_freecode needs no wirecap side.

/// A libpcap program's instructions as the engine's.
func instructions(of program: bpf_program) -> [BPFInstruction] {
    UnsafeBufferPointer(start: program.bf_insns, count: program.bf_insns == nil ? 0 : Int(program.bf_len)).map {
        BPFInstruction(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k)
    }
}

@_cdecl("pcap_compile")
public func wirecap_pcap_compile(
    _ p: OpaquePointer?, _ program: UnsafeMutablePointer<bpf_program>?, _ expression: UnsafePointer<CChar>?, _ optimize: Int32,
    _ netmask: bpf_u_int32
) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.compile(p, program, expression, optimize, netmask) }
    guard handle.isActivated else { return handle.fail(PCAP_ERROR_NOT_ACTIVATED, "\(handle.name): not-yet-activated pcap_t passed to pcap_compile") }
    // A dead handle of the capture's link type and snap length, as pcap_compile would use.
    guard let scratch = libpcap.pointee.open_dead_with_tstamp_precision(DLT_EN10MB, Int32(handle.options.snapLength), 0) else {
        return handle.fail(PCAP_ERROR, "\(handle.name): libpcap could not make a handle to compile with")
    }
    defer { libpcap.pointee.close(scratch) }
    guard libpcap.pointee.compile(scratch, program, expression, optimize, netmask) == 0 else {
        return handle.fail(PCAP_ERROR, realError(scratch))
    }
    if let program {
        handle.compiled.append(
            CompiledFilter(
                instructions: instructions(of: program.pointee), expression: expression.map { String(cString: $0) } ?? "", optimize: optimize != 0,
                netmask: netmask))
        if handle.compiled.count > PreloadHandle.compiledKept { handle.compiled.removeFirst() }
    }
    return 0
}

@_cdecl("pcap_setfilter")
public func wirecap_pcap_setfilter(_ p: OpaquePointer?, _ program: UnsafeMutablePointer<bpf_program>?) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.setfilter(p, program) }
    guard let program = program?.pointee, program.bf_insns != nil else {
        return handle.fail(PCAP_ERROR, "\(handle.name): pcap_setfilter needs a compiled program")
    }
    let given = instructions(of: program)
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        if let source = handle.compiled.last(where: { $0.instructions == given }) {
            try live.setFilter(source.expression, optimize: source.optimize, netmask: source.netmask)
        } else {
            try live.setFilter(program: given)
        }
        return 0
    }
}

@_cdecl("pcap_setdirection")
public func wirecap_pcap_setdirection(_ p: OpaquePointer?, _ direction: pcap_direction_t) -> Int32 {
    guard let handle = Handles.find(p) else { return libpcap.pointee.setdirection(p, direction) }
    let wanted: PcapDirection
    switch direction {
    case PCAP_D_IN: wanted = .in
    case PCAP_D_OUT: wanted = .out
    case PCAP_D_INOUT: wanted = .inout
    default: return handle.fail(PCAP_ERROR, "\(handle.name): invalid direction \(direction.rawValue)")
    }
    return handle.live(PCAP_ERROR) { (live) throws(PcapError) in
        try live.setDirection(wanted)
        return 0
    }
}
