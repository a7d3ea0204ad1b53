#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// Giving up root once the sockets are open, as tcpdump -Z and Suricata's run-as do: a process
/// that holds raw sockets for weeks should hold nothing else.
public enum Privileges {
    /// Capabilities by number (linux/capability.h), the few wirecap names.
    public enum Capability: Int, Sendable, CaseIterable {
        case netAdmin = 12
        case netRaw = 13
        /// To lock a new pool's memory beyond RLIMIT_MEMLOCK.
        case ipcLock = 14
    }

    /// Why a drop failed.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// -Z names a user the system does not know.
        case noSuchUser(String)
        /// The switch or the capability drop was refused (not root to begin with, for one).
        case refused(what: String, Errno)

        public var description: String {
            switch self {
            case .noSuchUser(let name): "-Z \(name): no such user (give an existing user, e.g. nobody)"
            case .refused(let what, let errno): "cannot \(what): \(errno) (run as root, or leave out -Z)"
            }
        }
    }

    /// tcpdump's -Z: the user's supplementary groups, its group, then the user, for the whole
    /// process (glibc applies set*id to every thread). Root's capabilities go with root: none is
    /// left. Returns the user's uid.
    @discardableResult
    public static func switchUser(to name: String) throws(Failure) -> UInt32 {
        var uid: UInt32 = 0
        let result = CWirecapLinux_switch_user(name, &uid)
        if result == -ENOENT { throw .noSuchUser(name) }
        if result != 0 { throw .refused(what: "switch to user \(name)", Errno(rawValue: -result)) }
        return uid
    }

    /// Keeps only `keeping` in the calling thread's effective and permitted capabilities, and
    /// none inheritable or ambient. Capabilities are per thread: threads the caller starts
    /// afterwards inherit the sets, so call it before starting them.
    public static func dropCapabilities(keeping: Set<Capability> = []) throws(Failure) {
        let mask = keeping.reduce(UInt64(0)) { $0 | (1 << UInt64($1.rawValue)) }
        if CWirecapLinux_keep_capabilities(mask) != 0 {
            throw .refused(what: "drop capabilities", Errno(rawValue: Glibc.errno))
        }
    }

    /// What capture and fwd do once every ring is open, before their threads start: -Z's switch to
    /// `user`, or without one every capability dropped but those opening again needs
    /// (`reopening`: `--reconnect` opens sockets and pools when a link comes back).
    public static func giveUp(switchingTo user: String?, reopening: Bool) throws(Failure) {
        if let user {
            try switchUser(to: user)
        } else {
            try dropCapabilities(keeping: reopening ? [.netRaw, .netAdmin, .ipcLock] : [])
        }
    }

    /// The calling thread's effective capabilities, bit n for capability n.
    public static var effective: UInt64 { CWirecapLinux_effective_capabilities() }
}
