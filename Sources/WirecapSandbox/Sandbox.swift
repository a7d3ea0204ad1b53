#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Two private network namespaces joined by one veth pair: traffic sent on `sender`'s end
/// arrives on `receiver`'s end and goes nowhere else.
///
/// Names are unique per process and call, the pair is made inside the namespaces (nothing is
/// ever created in the caller's namespace), IPv6 is off in both before the pair exists so the
/// only frames on it are the ones a test sends, and `tearDown` (or `with`) removes everything.
/// Namespaces left behind by a process that was killed are removed by the next sandbox.
public final class Sandbox: @unchecked Sendable {
    // @unchecked: every stored property is immutable except `tornDown`, which only `tearDown`
    // touches, and tearDown is called once by the owner.
    public let sender: NetworkNamespace
    public let receiver: NetworkNamespace
    /// The veth end in `sender`'s namespace.
    public let senderInterface = "wcsend0"
    /// The veth end in `receiver`'s namespace.
    public let receiverInterface = "wcrecv0"
    public let mtu: Int
    private var tornDown = false

    static let prefix = "wirecap-"
    private static let counter = Counter()

    /// Whether this process may build sandboxes: root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip`.
    public static var unavailableReason: String? {
        if geteuid() != 0 { return "needs root to create network namespaces (run as root, as CI does)" }
        if (try? Command.locate("ip")) == nil { return "needs `ip` from iproute2 (apt-get install iproute2)" }
        return nil
    }

    /// - Parameters:
    ///   - queues: receive and transmit queues on each veth end.
    ///   - mtu: MTU of both ends.
    public init(queues: Int = 1, mtu: Int = 1500) throws {
        if let reason = Self.unavailableReason { throw Command.Failure(command: ["sandbox"], status: 1, output: reason) }
        Self.removeStale()
        let id = Self.uniqueName()
        sender = NetworkNamespace(name: id + "-tx")
        receiver = NetworkNamespace(name: id + "-rx")
        self.mtu = mtu
        do {
            for ns in [sender, receiver] { try Self.addNamespace(ns) }
            try Self.addVeth(senderInterface, in: sender, peer: receiverInterface, in: receiver, queues: queues, mtu: mtu)
            try Command.run(["ip", "-n", receiver.name, "link", "set", "lo", "up"])
        } catch {
            tearDown()
            throw error
        }
    }

    /// A unique name for a new sandbox's namespaces: the prefix, this process, a counter.
    static func uniqueName() -> String { "\(prefix)\(getpid())-\(counter.next())" }

    /// Adds a namespace with IPv6 off before any interface exists in it, so that no router
    /// solicitation or MLD report ever appears among a test's frames.
    static func addNamespace(_ ns: NetworkNamespace) throws {
        try Command.run(["ip", "netns", "add", ns.name])
        try ns.exec(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
        try ns.exec(["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])
    }

    /// Makes a veth pair inside the namespaces (never in the caller's) and brings both ends up.
    static func addVeth(_ name: String, in ns: NetworkNamespace, peer: String, in peerNS: NetworkNamespace, queues: Int, mtu: Int) throws {
        try Command.run([
            "ip", "-n", ns.name, "link", "add", name, "numtxqueues", "\(queues)", "numrxqueues", "\(queues)",
            "type", "veth", "peer", "name", peer, "netns", peerNS.name, "numtxqueues", "\(queues)", "numrxqueues", "\(queues)",
        ])
        try Command.run(["ip", "-n", ns.name, "link", "set", name, "mtu", "\(mtu)", "up"])
        try Command.run(["ip", "-n", peerNS.name, "link", "set", peer, "mtu", "\(mtu)", "up"])
    }

    /// Makes the veth pair again, under the same names, after a test deleted it (an interface
    /// that goes away and comes back, with new ifindexes); returns once both ends have a carrier.
    public func addLink(queues: Int = 1) throws {
        try Self.addVeth(senderInterface, in: sender, peer: receiverInterface, in: receiver, queues: queues, mtu: mtu)
        try ForwardingSandbox.waitForCarrier(senderInterface, in: sender)
        try ForwardingSandbox.waitForCarrier(receiverInterface, in: receiver)
    }

    /// Builds a sandbox, runs `body` with it, and tears it down whatever happens.
    public static func with<T>(queues: Int = 1, mtu: Int = 1500, _ body: (Sandbox) throws -> T) throws -> T {
        let sandbox = try Sandbox(queues: queues, mtu: mtu)
        defer { sandbox.tearDown() }
        return try body(sandbox)
    }

    /// Removes both namespaces; the veth pair goes with them.
    public func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for ns in [sender, receiver] { _ = try? Command.run(["ip", "netns", "delete", ns.name]) }
    }

    deinit { tearDown() }

    /// Deletes sandboxes whose creating process no longer exists.
    static func removeStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") else { return }
        for name in names where name.hasPrefix(prefix) {
            let pidText = name.dropFirst(prefix.count).prefix { $0.isNumber }
            guard let pid = Int32(pidText), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? Command.run(["ip", "netns", "delete", name])
        }
    }

    private final class Counter: Sendable {
        private let value = Mutex(0)
        func next() -> Int {
            value.withLock { value in
                value += 1
                return value
            }
        }
    }
}
