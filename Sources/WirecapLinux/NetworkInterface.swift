#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// A network interface as the calling thread's network namespace sees it at lookup: its index,
/// flags, MTU and link type. A snapshot; the interface may change or go after it is taken.
public struct NetworkInterface: Hashable, Sendable {
    public let name: String
    public let index: Int32
    public let flags: Flags
    public let mtu: Int
    public let linkType: LinkType

    /// The interface's flags (SIOCGIFFLAGS), the ones wirecap looks at named.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Administratively up (`ip link set NAME up`).
        public static let up = Flags(rawValue: UInt32(IFF_UP))
        /// Up with a link (carrier): frames can leave. A veth runs only while its peer is up.
        public static let running = Flags(rawValue: UInt32(IFF_RUNNING))
        public static let loopback = Flags(rawValue: UInt32(IFF_LOOPBACK))
        public static let promiscuous = Flags(rawValue: UInt32(IFF_PROMISC))
    }

    /// The ARPHRD_* hardware type (SIOCGIFHWADDR): what link-layer header frames carry.
    public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// ARPHRD_ETHER.
        public static let ethernet = LinkType(rawValue: 1)
        /// ARPHRD_LOOPBACK.
        public static let loopback = LinkType(rawValue: 772)

        /// Whether frames on it start with an Ethernet header (libpcap's DLT_EN10MB): Ethernet
        /// and loopback.
        public var carriesEthernetHeaders: Bool { self == .ethernet || self == .loopback }

        public var description: String { "ARPHRD \(rawValue)" }
    }

    /// Looks `name` up in the calling thread's network namespace. A missing interface fails with
    /// `.noSuchDevice` (`isNoSuchInterface`).
    public init(named name: String) throws(SystemError) {
        let index = if_nametoindex(name)
        if index == 0 { throw SystemError(.current, operation: "looking up the interface", interface: name) }
        var flags: UInt32 = 0
        try check(CWirecapLinux_interface_flags(name, &flags), "reading the flags", interface: name)
        var arphrd: UInt16 = 0
        try check(CWirecapLinux_interface_hwtype(name, &arphrd), "reading the link type", interface: name)
        var mtu: Int32 = 0
        try check(CWirecapLinux_interface_mtu(name, &mtu), "reading the MTU", interface: name)
        self.name = name
        self.index = Int32(bitPattern: index)
        self.flags = Flags(rawValue: flags)
        self.linkType = LinkType(rawValue: arphrd)
        self.mtu = Int(mtu)
    }

    public var isUp: Bool { flags.contains(.up) }
    public var isRunning: Bool { flags.contains(.running) }
    /// ARPHRD_ETHER: a real Ethernet link, where one 802.1Q tag may come on top of the MTU.
    public var isEthernet: Bool { linkType == .ethernet }
    public var isLoopback: Bool { linkType == .loopback }
}
