import CWirecapPcap

extension PcapHandle {
    /// Compiles a filter expression against this handle's link type and installs it, as
    /// pcap_compile + pcap_setfilter. On a savefile libpcap runs the BPF program in user space,
    /// so `next`, `dispatch` and `loop` then see only the packets it accepts.
    ///
    /// The netmask defaults to PCAP_NETMASK_UNKNOWN: a file has no interface to take one from, so
    /// `ip broadcast` is refused rather than guessed. A bad expression throws libpcap's message
    /// (pcap_geterr), e.g. "syntax error".
    public func setFilter(_ expression: String, optimize: Bool = true, netmask: UInt32 = 0xffff_ffff) throws(PcapError) {
        let pointer = try open()
        var program = bpf_program()
        guard pcap_compile(pointer, &program, expression, optimize ? 1 : 0, netmask) == 0 else {
            throw lastError(pointer)
        }
        // libpcap copies the program into the handle, so ours is freed whatever happens.
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(pointer, &program) == 0 else { throw lastError(pointer) }
    }
}
