import WirecapLinux

/// A named network namespace (`ip netns`), and a way to run code inside it from this process.
///
/// Only the name is kept: the namespace is opened (`WirecapLinux.NetworkNamespace`) for each
/// `run` and closed after, so holding one never keeps a deleted namespace, and its veth pair,
/// alive.
public struct NetworkNamespace: Sendable, Hashable {
    public let name: String

    public init(name: String) { self.name = name }

    /// Runs `body` on the calling thread with that thread switched into the namespace, then
    /// switches back. Sockets made inside stay in the namespace for their whole life, so a
    /// capture or a sender can be opened here and then used from any thread. The network
    /// namespace is per thread, so the rest of the process is not affected.
    public func run<T>(_ body: () throws -> T) throws -> T {
        try WirecapLinux.NetworkNamespace(named: name).run(body)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    @discardableResult
    public func exec(_ arguments: [String]) throws -> String {
        try Command.run(["ip", "netns", "exec", name] + arguments)
    }
}
