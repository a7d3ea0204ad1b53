import CWirecapPcap
import WirecapEngine

/// Compiles tcpdump filter expressions with libpcap's own compiler into a classic BPF program the
/// engine attaches to every fanout member.
///
/// Compiled for plain Ethernet frames (`pcap_open_dead`): on a live Linux handle libpcap would
/// also use the kernel's BPF extensions, which matters for `vlan`, since the kernel strips VLAN
/// tags before a socket filter runs. A `vlan` expression compiled here sees no tag on live
/// traffic; on files it behaves as tcpdump's.
public enum BPFCompiler {
    /// DLT_EN10MB.
    public static let ethernet: Int32 = 1

    /// The program for `expression`, returning `snapLength` for an accepted packet (so the kernel
    /// also cuts it). A bad expression throws libpcap's own message.
    public static func compile(_ expression: String, snapLength: Int, linkType: Int32 = ethernet, optimize: Bool = true) throws(PcapError) -> [BPFInstruction] {
        guard let dead = pcap_open_dead(linkType, Int32(snapLength)) else {
            throw PcapError("libpcap could not make a handle to compile the filter with")
        }
        defer { pcap_close(dead) }
        var program = bpf_program()
        if pcap_compile(dead, &program, expression, optimize ? 1 : 0, PCAP_NETMASK_UNKNOWN) != 0 {
            throw PcapError(String(cString: pcap_geterr(dead)))
        }
        defer { pcap_freecode(&program) }
        return (0..<Int(program.bf_len)).map { i in
            let insn = program.bf_insns[i]
            return BPFInstruction(code: insn.code, jt: insn.jt, jf: insn.jf, k: insn.k)
        }
    }
}
