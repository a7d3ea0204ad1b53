import CWirecapPcapABI
import WirecapEngine
import WirecapPcap

/// A wirecap handle as a libpcap program holds it. To the program it is a `pcap_t *`, and a real
/// one: a handle from the real libpcap's `pcap_open_dead` (`dead`), so that a libpcap call the
/// library does not interpose still finds a valid handle and answers as libpcap does on a dead
/// one ("Packets aren't available from a pcap_open_dead pcap_t"), with its error in the
/// handle's own error buffer, never a crash. The library finds this object from the pointer in
/// `CWirecapPcapABI_lookup`'s table.
///
/// Before `pcap_activate` it collects what pcap_set_* asks for; activation opens the facade's
/// live handle (`PcapHandle.openLive`), which reads every queue in one loop.
///
/// libpcap's threading rules apply: one thread uses a handle at a time, except `breakLoop`,
/// which may come from any thread or a signal handler (the facade's breakLoop is an atomic
/// flag and one write(2)).
final class PreloadHandle: @unchecked Sendable {
    let dead: OpaquePointer
    /// The device as the program named it (`wirecap:eth0:queues=2`), for messages.
    let name: String
    var options = PcapHandle.LiveOptions()
    /// pcap_set_rfmon: wirecap has no monitor mode; activation refuses it, as libpcap does for
    /// a device without one.
    var monitorMode = false
    /// pcap_setnonblock before activation.
    var nonblocking = false
    private(set) var handle: PcapHandle?
    /// The last few programs `pcap_compile` made on this handle, with their expressions:
    /// `pcap_setfilter` given one of them (the same instructions) installs the expression (the
    /// facade compiles it for the kernel, VLAN tests included) rather than the program. Matched
    /// by content, not by address: a freed program's memory may hold another one later.
    var compiled: [CompiledFilter] = []
    static let compiledKept = 8
    /// pcap_next_ex's packet (in `nextBuffer`, allocated at activation, snap length bytes) and
    /// header, valid until the next read, as libpcap's are.
    var nextBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Memory of its own, not a stored property: a pointer to it outlives the call.
    let nextHeader = UnsafeMutablePointer<pcap_pkthdr>.allocate(capacity: 1)

    init(dead: OpaquePointer, name: String, device: DeviceName) {
        self.dead = dead
        self.name = name
        // libpcap's pcap_create defaults; tcpdump and the others set their own on top.
        options.snapLength = 262_144
        options.timeoutMilliseconds = 0
        options.promiscuous = false
        // Programs set their filter after activation, some after giving up root (tcpdump
        // without -w drops root first): the facade keeps a handle to compile with.
        options.keepsFilterCompiler = true
        device.apply(to: &options)
        interface = device.interface
    }

    deinit { nextHeader.deallocate() }

    /// The interface under the wirecap name (`eth0`).
    let interface: String

    var isActivated: Bool { handle != nil }

    /// pcap_activate: the facade's live handle with the options set so far.
    func activate() -> Int32 {
        guard handle == nil else { return fail(PCAP_ERROR_ACTIVATED, "\(name): the handle is already activated") }
        if monitorMode {
            return fail(PCAP_ERROR_RFMON_NOTSUP, "\(name): wirecap captures in the interface's normal mode; monitor mode (rfmon) is not supported")
        }
        do {
            try options.validate(device: interface)
            let opened = try PcapHandle.openLive(device: interface, options: options)
            if nonblocking { try opened.setNonblocking(true) }
            handle = opened
            nextBuffer = .allocate(byteCount: options.snapLength, alignment: 16)
            return 0
        } catch {
            return fail(Self.status(of: error), "\(name): \(error.message)")
        }
    }

    /// libpcap's status for a failed open, so a program can tell a missing device or privilege
    /// from the rest (tcpdump prints advice for each).
    static func status(of error: PcapError) -> Int32 {
        switch error.underlying {
        case .noSuchInterface?: PCAP_ERROR_NO_SUCH_DEVICE
        case .missingPrivilege?: PCAP_ERROR_PERM_DENIED
        case .interfaceDown?: PCAP_ERROR_IFACE_NOT_UP
        default: PCAP_ERROR
        }
    }

    /// Puts `message` where pcap_geterr finds it and returns `status`.
    @discardableResult
    func fail(_ status: Int32, _ message: String) -> Int32 {
        CWirecapPcapABI_set_error(dead, message)
        return status
    }

    /// For a pcap_set_* call: whether the handle can still take settings (libpcap's
    /// PCAP_ERROR_ACTIVATED otherwise, with its message).
    func settable(_ body: () -> Void) -> Int32 {
        guard handle == nil else { return fail(PCAP_ERROR_ACTIVATED, "\(name): options can't be set after the handle is activated") }
        body()
        return 0
    }

    /// Runs `body` on the live handle; before activation, or on an error, sets the error and
    /// returns `failure`.
    func live<T>(_ failure: T, _ body: (PcapHandle) throws(PcapError) -> T) -> T {
        guard let handle else {
            CWirecapPcapABI_set_error(dead, "\(name): the handle has not been activated")
            return failure
        }
        do {
            return try body(handle)
        } catch {
            CWirecapPcapABI_set_error(dead, "\(name): \(error.message)")
            return failure
        }
    }

    /// pcap_close: the live handle closes (its capture stops and its memory goes), then the
    /// real dead handle.
    func close() {
        handle?.close()
        handle = nil
        libpcap.pointee.close(dead)
        nextBuffer.deallocate()
        nextBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }
}

/// Where the library keeps its handles: the C table, so that a lookup takes no lock and can run
/// in a signal handler.
enum Handles {
    static func find(_ p: OpaquePointer?) -> PreloadHandle? {
        guard let p, let state = CWirecapPcapABI_lookup(p) else { return nil }
        return Unmanaged<PreloadHandle>.fromOpaque(state).takeUnretainedValue()
    }

    /// Keeps `handle` (retained) under its dead pcap_t; false when the table is full.
    static func add(_ handle: PreloadHandle) -> Bool {
        let state = Unmanaged.passRetained(handle)
        guard CWirecapPcapABI_register(handle.dead, state.toOpaque()) != 0 else {
            state.release()
            return false
        }
        return true
    }

    static func remove(_ handle: PreloadHandle) {
        if let state = CWirecapPcapABI_unregister(handle.dead) {
            Unmanaged<PreloadHandle>.fromOpaque(state).release()
        }
    }
}

/// A program `pcap_compile` made, and what it was made from.
struct CompiledFilter {
    let instructions: [BPFInstruction]
    let expression: String
    let optimize: Bool
    let netmask: UInt32
}

/// The real libpcap's functions (`CWirecapPcapABI_real`, filled when the library was loaded).
var libpcap: UnsafePointer<CWirecapPcapABI_libpcap> { CWirecapPcapABI_table() }

/// The message in a real handle's error buffer (pcap_geterr).
func realError(_ p: OpaquePointer) -> String { libpcap.pointee.geterr(p).map { String(cString: $0) } ?? "" }
