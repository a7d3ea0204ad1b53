#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong while opening or running a capture, as values: what failed, on
/// what, with the sizes and errno involved. `description` is one line in the library's terms;
/// `description(naming:)` the same line with a front end's names for configuration parameters.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case noSuchInterface(String)
    case interfaceDown(String)
    case missingPrivilege(interface: String)
    case unsupportedLinkType(interface: String, arphrd: Int)
    /// A configuration the engine refuses, or memory its sizes could not get.
    case configuration(ConfigurationError)
    case system(operation: String, errno: Int32)

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
        case .configuration(let error):
            return error.description
        case .system(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

extension CaptureError {
    /// `description`, with configuration parameters spelled by `name` (a flag, an option).
    public func description(naming name: (ConfigurationError.Parameter) -> String) -> String {
        if case .configuration(let error) = self { return error.description(naming: name) }
        return description
    }
}

/// Runs a call that follows the `-1` and `errno` convention and turns failure into a
/// `CaptureError.system` that says what was being attempted.
@inline(__always)
public func systemCall(_ operation: @autoclosure () -> String, _ result: Int32) throws(CaptureError) -> Int32 {
    if result < 0 { throw .system(operation: operation(), errno: errno) }
    return result
}
