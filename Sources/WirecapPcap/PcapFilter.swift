import CWirecapPcap
import WirecapEngine

extension PcapHandle {
    /// Compiles a filter expression with libpcap's compiler and installs it, as pcap_compile +
    /// pcap_setfilter. A bad expression throws libpcap's message (pcap_geterr), e.g. "syntax
    /// error".
    ///
    /// On a file libpcap runs the program in user space. Live, the kernel runs it on every
    /// member of the fanout group, swapped in without a race while the capture runs: see
    /// `LiveCapture.setFilter`. From the moment this returns, no packet the new filter rejects
    /// is handed over.
    ///
    /// `netmask` is the IPv4 netmask of the network, in host byte order as pcap_compile takes it
    /// (0xffffff00 for a /24), which `ip broadcast` needs; it defaults to PCAP_NETMASK_UNKNOWN,
    /// with which `ip broadcast` is refused rather than guessed.
    ///
    /// Live, compiling for the kernel opens the device (libpcap's VLAN and direction tests
    /// depend on it): without CAP_NET_RAW at that moment this throws a message that says so.
    public func setFilter(_ expression: String, optimize: Bool = true, netmask: UInt32 = BPFCompiler.netmaskUnknown) throws(PcapError) {
        try using(reading: true) { (source) throws(PcapError) in try setFilter(expression, optimize: optimize, netmask: netmask, on: source) }
    }

    /// Installs a compiled classic BPF program, as pcap_setfilter with a program from elsewhere
    /// (libpcap's compiler on another handle, or hand-written): on a file libpcap runs it;
    /// live, it is swapped in as `setFilter(_:)` swaps an expression's, but the kernel runs
    /// this one program as it is (a live compile would have tested VLAN tags through the
    /// kernel's extensions: prefer the expression where there is one).
    public func setFilter(program: [BPFInstruction]) throws(PcapError) {
        try using(reading: true) { (source) throws(PcapError) in
            switch source {
            case .savefile(let pointer):
                var instructions = program.map { bpf_insn(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
                try instructions.withUnsafeMutableBufferPointer { (buffer) throws(PcapError) in
                    var compiled = bpf_program(bf_len: UInt32(buffer.count), bf_insns: buffer.baseAddress)
                    guard pcap_setfilter(pointer, &compiled) == 0 else { throw lastError(pointer) }
                }
            case .live(let reader):
                try reader.capture.setFilter(program: program)
            }
        }
    }

    private func setFilter(_ expression: String, optimize: Bool, netmask: UInt32, on source: Source) throws(PcapError) {
        switch source {
        case .savefile(let pointer):
            var program = bpf_program()
            guard pcap_compile(pointer, &program, expression, optimize ? 1 : 0, netmask) == 0 else {
                throw lastError(pointer)
            }
            // libpcap copies the program into the handle, so ours is freed whatever happens.
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(pointer, &program) == 0 else { throw lastError(pointer) }
        case .live(let reader):
            try reader.capture.setFilter(expression, optimize: optimize, netmask: netmask)
        }
    }
}

/// A classic BPF program that user space runs (libpcap's bpf_filter) on packets the kernel
/// accepted under an earlier filter, during a live filter swap.
final class UserSpaceFilter: @unchecked Sendable {
    // @unchecked: the instructions are written once, in init, and only read after.
    let instructions: UnsafeMutableBufferPointer<bpf_insn>

    init(_ program: [BPFInstruction]) {
        instructions = .allocate(capacity: program.count)
        for (i, insn) in program.enumerated() {
            instructions[i] = bpf_insn(code: insn.code, jt: insn.jt, jf: insn.jf, k: insn.k)
        }
    }

    deinit { instructions.deallocate() }

    @inline(__always)
    func accepts(_ packet: Packet) -> Bool {
        guard let base = packet.bytes.baseAddress else { return false }
        return bpf_filter(
            instructions.baseAddress, base.assumingMemoryBound(to: UInt8.self), UInt32(truncatingIfNeeded: packet.wireLength),
            UInt32(truncatingIfNeeded: packet.bytes.count)) != 0
    }
}

/// Hands over only the packets `filter` accepts, and counts them: the walk of a chunk that may
/// hold packets an earlier filter let in. The handler is reached through a pointer, not copied
/// (see `FacadeWalk`).
struct RecheckingHandler<H: PacketHandler>: PacketHandler {
    let target: UnsafeMutablePointer<H>
    let filter: UserSpaceFilter
    var passed = 0

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        guard filter.accepts(packet) else { return }
        passed += 1
        target.pointee.handle(packet)
    }

    mutating func blockDone(queue: Int) {}
}
