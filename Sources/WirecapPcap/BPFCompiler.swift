import CWirecapPcap
import WirecapEngine

/// Compiles tcpdump filter expressions with libpcap's own compiler into classic BPF programs:
/// for the engine to attach to every fanout member, or for user space.
public enum BPFCompiler {
    /// DLT_EN10MB.
    public static let ethernet: Int32 = 1
    /// PCAP_NETMASK_UNKNOWN: `ip broadcast` is refused rather than guessed.
    public static let netmaskUnknown: UInt32 = 0xffff_ffff

    /// The program for `expression` over plain frames as they are in a file, VLAN tags inline
    /// (`pcap_open_dead`): what user space runs, on files or on the engine's packets, whose tags
    /// the engine has put back. It returns `snapLength` for an accepted packet, so in the kernel
    /// it also cuts. A bad expression throws libpcap's own message.
    public static func compile(
        _ expression: String, snapLength: Int, linkType: Int32 = ethernet, optimize: Bool = true, netmask: UInt32 = netmaskUnknown
    ) throws(PcapError) -> [BPFInstruction] {
        // libpcap takes a C int: a larger snap length is refused here rather than trapping.
        guard let snap = Int32(exactly: snapLength), snap > 0 else {
            throw PcapError("snap length \(snapLength) is out of range: use 1 to \(Int32.max) bytes")
        }
        guard let dead = pcap_open_dead(linkType, snap) else {
            throw PcapError("libpcap could not make a handle to compile the filter with")
        }
        defer { pcap_close(dead) }
        return try compile(expression, on: dead, optimize: optimize, netmask: netmask)
    }

    /// The program for `expression` as libpcap compiles it for a live capture on `device`, to run
    /// in the kernel. The difference is VLAN: the kernel strips a tag into the packet's metadata
    /// before a socket filter runs, and only a live handle makes libpcap test `vlan` through the
    /// kernel's BPF extensions rather than at byte 12. So a short-lived libpcap handle is opened on
    /// the device (in the calling thread's network namespace) just to compile with.
    ///
    /// The expression is first checked without the device, so a bad one throws libpcap's message
    /// whatever the device. If libpcap cannot open the device, the file program is returned: for
    /// a capture about to open the same device, whose own open then fails with its reason before
    /// anything runs. A capture already running uses `compileLive`, which says so instead.
    public static func compile(
        _ expression: String, snapLength: Int, device: String, optimize: Bool = true, netmask: UInt32 = netmaskUnknown
    ) throws(PcapError) -> [BPFInstruction] {
        let offline = try compile(expression, snapLength: snapLength, optimize: optimize, netmask: netmask)
        switch try live(expression, snapLength: snapLength, device: device, optimize: optimize, netmask: netmask) {
        case .compiled(let program): return program
        case .cannotOpen: return offline
        }
    }

    /// As `compile(_:snapLength:device:)`, for a capture that is already running (a filter swap):
    /// when libpcap cannot open the device to compile with, this throws, naming the reason (for
    /// a process that gave up CAP_NET_RAW after opening, that it needs it back), rather than
    /// returning the file program, whose `vlan` tests look for tags the kernel has removed and
    /// would silently never match.
    public static func compileLive(
        _ expression: String, snapLength: Int, device: String, optimize: Bool = true, netmask: UInt32 = netmaskUnknown
    ) throws(PcapError) -> [BPFInstruction] {
        _ = try compile(expression, snapLength: snapLength, optimize: optimize, netmask: netmask)
        switch try live(expression, snapLength: snapLength, device: device, optimize: optimize, netmask: netmask) {
        case .compiled(let program): return program
        case .cannotOpen(let permission, let reason):
            if permission {
                throw PcapError(
                    "compiling a filter for \(device) needs CAP_NET_RAW, which this process no longer has (libpcap opens the device to compile the kernel's VLAN and direction tests): set the filter before giving up the privilege (LiveOptions.filter), or keep CAP_NET_RAW")
            }
            throw PcapError("cannot compile a filter for \(device): libpcap could not open it: \(reason)")
        }
    }

    private enum LiveCompile {
        case compiled([BPFInstruction])
        case cannotOpen(permission: Bool, reason: String)
    }

    /// Compiles on a short-lived live handle on `device`, or says why libpcap could not open it.
    private static func live(
        _ expression: String, snapLength: Int, device: String, optimize: Bool, netmask: UInt32
    ) throws(PcapError) -> LiveCompile {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        guard let live = pcap_create(device, &errbuf) else {
            return .cannotOpen(permission: false, reason: errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { pcap_close(live) }
        _ = pcap_set_snaplen(live, Int32(clamping: snapLength))  // in range: checked by the compile before
        // The handle lives for the compile only: the smallest ring libpcap accepts will do.
        _ = pcap_set_buffer_size(live, 1 << 16)
        let rc = pcap_activate(live)
        guard rc >= 0 else {
            return .cannotOpen(permission: rc == PCAP_ERROR_PERM_DENIED, reason: String(cString: pcap_geterr(live)))
        }
        return .compiled(try compile(expression, on: live, optimize: optimize, netmask: netmask))
    }

    /// A libpcap handle on a device kept open only to compile filters for its kernel, so that a
    /// capture can take a new filter after the process gave up CAP_NET_RAW (tcpdump drops root
    /// before it sets its filter when it does not write a file). Opened while the privilege is
    /// there; a drop-all program on its socket, so the kernel copies nothing into its ring (it
    /// still runs that one-instruction filter on every packet of the device).
    public final class KeptCompiler: @unchecked Sendable {
        // @unchecked: the handle is used by one filter swap at a time (the capture's filter lock).
        private let handle: OpaquePointer
        let device: String

        /// Opens the handle on `device` in the calling thread's namespace; nil when libpcap
        /// cannot (the capture's own compile then says why, as without a kept compiler).
        init?(device: String, snapLength: Int) {
            var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let live = pcap_create(device, &errbuf) else { return nil }
            _ = pcap_set_snaplen(live, Int32(clamping: snapLength))
            _ = pcap_set_buffer_size(live, 1 << 16)
            var dropAll = bpf_insn(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0)
            let dropped = withUnsafeMutablePointer(to: &dropAll) { instruction in
                var program = bpf_program(bf_len: 1, bf_insns: instruction)
                return pcap_activate(live) >= 0 && pcap_setfilter(live, &program) == 0
            }
            guard dropped else {
                pcap_close(live)
                return nil
            }
            handle = live
            self.device = device
        }

        deinit { pcap_close(handle) }

        /// `expression` as libpcap compiles it for this device's kernel.
        func compile(_ expression: String, optimize: Bool, netmask: UInt32) throws(PcapError) -> [BPFInstruction] {
            try BPFCompiler.compile(expression, on: handle, optimize: optimize, netmask: netmask)
        }
    }

    private static func compile(_ expression: String, on handle: OpaquePointer, optimize: Bool, netmask: UInt32) throws(PcapError) -> [BPFInstruction] {
        var program = bpf_program()
        if pcap_compile(handle, &program, expression, optimize ? 1 : 0, netmask) != 0 {
            throw PcapError(String(cString: pcap_geterr(handle)))
        }
        defer { pcap_freecode(&program) }
        return (0..<Int(program.bf_len)).map { i in
            let insn = program.bf_insns[i]
            return BPFInstruction(code: insn.code, jt: insn.jt, jf: insn.jf, k: insn.k)
        }
    }
}
