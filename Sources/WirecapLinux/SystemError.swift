#if canImport(Glibc)
import Glibc
#endif

/// An error number, as a system call leaves it in `errno`. Only the names wirecap acts on are
/// spelled out; any other value still round-trips through `rawValue`.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's `errno`, read right after a call failed.
    @usableFromInline
    static var current: Errno { Errno(rawValue: Glibc.errno) }

    /// EPERM: the call needs a capability this process lacks (CAP_NET_RAW, CAP_SYS_ADMIN).
    public static let notPermitted = Errno(rawValue: EPERM)
    /// EACCES.
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// ENOENT: no such file, e.g. a network namespace name that `ip netns` does not know.
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// EINTR.
    public static let interrupted = Errno(rawValue: EINTR)
    /// ENXIO: the device went away under a socket bound to it.
    public static let noSuchDeviceOrAddress = Errno(rawValue: ENXIO)
    /// ENOMEM: no kernel memory for the request (a ring too large, for one).
    public static let outOfMemory = Errno(rawValue: ENOMEM)
    /// ENODEV: no interface of that name or index in the thread's network namespace.
    public static let noSuchDevice = Errno(rawValue: ENODEV)
    /// EINVAL.
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// EAGAIN (EWOULDBLOCK): a non-blocking call would have waited.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// EMSGSIZE: a frame longer than the device takes.
    public static let messageTooLong = Errno(rawValue: EMSGSIZE)
    /// ENETDOWN: the interface is down.
    public static let networkDown = Errno(rawValue: ENETDOWN)
    /// ENOBUFS: the device queue or the socket's send budget is full.
    public static let noBufferSpace = Errno(rawValue: ENOBUFS)

    /// strerror's words for it.
    public var description: String { String(cString: strerror(rawValue)) }
}

/// A system call that failed: the errno, what was being attempted, and the interface it was
/// attempted on when there is one. The one error type of `WirecapLinux`.
public struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    public var errno: Errno
    /// What was being done, as a phrase that reads before "failed": "binding the socket".
    public var operation: String
    /// The interface the call was about, if any.
    public var interface: String?

    public init(_ errno: Errno, operation: String, interface: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.interface = interface
    }

    /// One line: `binding the socket on eth9 failed: No such device (errno 19)`.
    public var description: String {
        let on = interface.map { " on \($0)" } ?? ""
        return "\(operation)\(on) failed: \(errno) (errno \(errno.rawValue))"
    }

    /// The interface does not exist (in the calling thread's network namespace).
    public var isNoSuchInterface: Bool { errno == .noSuchDevice || errno == .noSuchDeviceOrAddress }

    /// The process lacks the privilege the call needs.
    public var isMissingPrivilege: Bool { errno == .notPermitted || errno == .permissionDenied }

    /// A transient refusal that the same call, retried, gets past: a full device queue or send
    /// budget, or a signal.
    public var isBusy: Bool { errno == .noBufferSpace || errno == .wouldBlock || errno == .interrupted }
}

/// The `-1`-and-`errno` convention turned into a thrown `SystemError`.
@inline(__always)
func check(_ result: Int32, _ operation: @autoclosure () -> String, interface: String? = nil) throws(SystemError) {
    if result < 0 { throw SystemError(.current, operation: operation(), interface: interface) }
}
