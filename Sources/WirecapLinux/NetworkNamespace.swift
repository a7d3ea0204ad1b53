#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux

/// A network namespace held open by a descriptor (which keeps it alive), and the way to run code
/// inside it. The network namespace is per thread: switching one thread changes nothing for
/// the others, and sockets keep the namespace they were made in for their whole life.
public final class NetworkNamespace: Sendable {
    public let descriptor: Int32
    /// Where it was opened from, named in errors: `/proc/thread-self/ns/net`, `/run/netns/NAME`.
    public let path: String

    /// Opens the namespace file at `path` (any `/proc/PID/ns/net`, or a bind mount of one).
    public init(path: String) throws(SystemError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SystemError(.current, operation: "opening the network namespace \(path)") }
        descriptor = fd
        self.path = path
    }

    /// The namespace `ip netns add NAME` made (a bind mount under /run/netns).
    public convenience init(named name: String) throws(SystemError) {
        try self.init(path: "/run/netns/\(name)")
    }

    deinit { close(descriptor) }

    /// The calling thread's network namespace (not the process's: threads may differ).
    public static func current() throws(SystemError) -> NetworkNamespace {
        try NetworkNamespace(path: "/proc/thread-self/ns/net")
    }

    /// Whether both are the same namespace: the same inode on the same nsfs device.
    public func isSame(as other: NetworkNamespace) -> Bool {
        var mine = stat()
        var theirs = stat()
        guard fstat(descriptor, &mine) == 0, fstat(other.descriptor, &theirs) == 0 else { return false }
        return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino
    }

    /// Runs `body` on the calling thread switched into this namespace, then switches the thread
    /// back. When the thread is already here nothing is switched (which needs no CAP_SYS_ADMIN).
    /// Throws a `SystemError` when the thread cannot get in, or what `body` throws; a thread that
    /// cannot get back stops the process, since it would go on in the wrong namespace unseen.
    public func run<T, E: Error>(_ body: () throws(E) -> T) throws -> T {
        let original = try NetworkNamespace.current()
        if original.isSame(as: self) { return try body() }
        if CWirecapLinux_setns_net(descriptor) != 0 {
            throw SystemError(.current, operation: "entering the network namespace \(path)")
        }
        defer {
            precondition(CWirecapLinux_setns_net(original.descriptor) == 0, "cannot return to the network namespace this thread came from")
        }
        return try body()
    }
}
