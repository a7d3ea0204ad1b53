#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine

/// A named network namespace (`ip netns`), and a way to run code inside it from this process.
public struct NetworkNamespace: Sendable, Hashable {
    public let name: String

    public init(name: String) { self.name = name }

    /// Runs `body` on the calling thread with that thread switched into the namespace, then
    /// switches back. Sockets made inside stay in the namespace for their whole life, so a
    /// capture or a sender can be opened here and then used from any thread. The network
    /// namespace is per thread, so the rest of the process is not affected.
    public func run<T>(_ body: () throws -> T) throws -> T {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { throw CaptureError.system(operation: "opening this thread's network namespace", errno: errno) }
        defer { close(original) }
        let target = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        guard target >= 0 else { throw CaptureError.system(operation: "opening network namespace \(name)", errno: errno) }
        defer { close(target) }
        guard CWirecapLinux_setns_net(target) == 0 else {
            throw CaptureError.system(operation: "entering network namespace \(name)", errno: errno)
        }
        defer {
            // Failing to get back would leave this thread in the sandbox; that must not go unseen.
            precondition(CWirecapLinux_setns_net(original) == 0, "cannot return from network namespace \(name)")
        }
        return try body()
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    @discardableResult
    public func exec(_ arguments: [String]) throws -> String {
        try Command.run(["ip", "netns", "exec", name] + arguments)
    }
}
