#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong while opening or running a capture, phrased for the person at
/// the terminal: what failed, on what, and what to do about it. `description` is one line.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case noSuchInterface(String)
    case interfaceDown(String)
    case missingPrivilege(interface: String)
    case unsupportedLinkType(interface: String, arphrd: Int)
    case invalidConfiguration(String)
    case system(operation: String, errno: Int32)
    /// `start`, `startWorkers` or `startCapture` was called on an engine that already started.
    case alreadyStarted

    public var description: String {
        switch self {
        case .noSuchInterface(let name):
            return "cannot capture on \(name): no such interface (list interfaces with `ip link`)"
        case .interfaceDown(let name):
            return "cannot capture on \(name): the interface is down (bring it up with `ip link set \(name) up`)"
        case .missingPrivilege(let name):
            return "cannot capture on \(name): packet sockets need CAP_NET_RAW (run as root, or `setcap cap_net_raw+ep` on the binary)"
        case .unsupportedLinkType(let name, let arphrd):
            return "cannot capture on \(name): link type ARPHRD \(arphrd) is not supported yet (Ethernet and loopback are)"
        case .invalidConfiguration(let message):
            return message
        case .alreadyStarted:
            return "the capture was already started: an engine starts once (open a new one to capture again)"
        case .system(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

/// Runs a call that follows the `-1` and `errno` convention and turns failure into a
/// `CaptureError.system` that says what was being attempted.
@inline(__always)
public func systemCall(_ operation: @autoclosure () -> String, _ result: Int32) throws(CaptureError) -> Int32 {
    if result < 0 { throw .system(operation: operation(), errno: errno) }
    return result
}
