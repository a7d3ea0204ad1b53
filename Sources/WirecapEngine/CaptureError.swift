import WirecapLinux

/// Everything that can go wrong while opening or running a capture (or sending through a
/// transmit ring), as values: what failed, on what, with the sizes and errno involved.
/// `description` is one line in the library's terms; `description(naming:)` the same line with a
/// front end's names for configuration parameters.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    /// What was being done on the interface, for the words of the message.
    public enum Activity: String, Sendable {
        case capture
        case send
    }

    case noSuchInterface(String, activity: Activity = .capture)
    case interfaceDown(String, activity: Activity = .capture)
    /// Up, but without a link (IFF_RUNNING clear): a cable out, or a veth whose peer is down.
    case noLink(String, activity: Activity = .send)
    case missingPrivilege(interface: String, activity: Activity = .capture)
    case unsupportedLinkType(interface: String, arphrd: Int, activity: Activity = .capture)
    /// The interface took no frame from a transmit ring for `seconds` with `waiting` frames in it.
    case transmitStalled(interface: String, seconds: UInt64, waiting: Int, lastError: Errno?)
    /// A configuration the engine refuses, or memory its sizes could not get.
    case configuration(ConfigurationError)
    /// A system call failed, and no case above says more.
    case system(SystemError)
    /// `start`, `startWorkers` or `startCapture` was called on an engine that already started.
    case alreadyStarted

    public var description: String {
        switch self {
        case .noSuchInterface(let name, let activity):
            return "cannot \(activity.rawValue) on \(name): no such interface (list interfaces with `ip link`)"
        case .interfaceDown(let name, let activity):
            return "cannot \(activity.rawValue) on \(name): the interface is down (bring it up with `ip link set \(name) up`)"
        case .noLink(let name, let activity):
            return "cannot \(activity.rawValue) on \(name): the interface has no link (check the cable, or for a veth that its peer is up: `ip link show \(name)`)"
        case .missingPrivilege(let name, let activity):
            return "cannot \(activity.rawValue) on \(name): packet sockets need CAP_NET_RAW (run as root, or `setcap cap_net_raw+ep` on the binary)"
        case .unsupportedLinkType(let name, let arphrd, .capture):
            return "cannot capture on \(name): link type ARPHRD \(arphrd) is not supported yet (Ethernet and loopback are)"
        case .unsupportedLinkType(let name, let arphrd, let activity):
            return "cannot \(activity.rawValue) on \(name): link type ARPHRD \(arphrd) is not Ethernet (wirecap sends Ethernet frames: choose an Ethernet interface)"
        case .transmitStalled(let name, let seconds, let waiting, let lastError):
            return "cannot send on \(name): the interface took no frame for \(seconds) s with \(waiting) waiting (is its link up? `ip link show \(name)`)"
                + (lastError.map { "; last error: \($0)" } ?? "")
        case .configuration(let error):
            return error.description
        case .alreadyStarted:
            return "the capture was already started: an engine starts once (open a new one to capture again)"
        case .system(let error):
            return error.description
        }
    }

    /// A failed call that returns its error number rather than setting `errno` (pthread_create).
    public static func system(operation: String, errno: Int32) -> CaptureError {
        .system(SystemError(Errno(rawValue: errno), operation: operation))
    }

    /// A failed call about an interface, in the words of the case a person can act on when there
    /// is one (no such interface, down, no privilege), else as it came.
    package init(_ error: SystemError, activity: Activity = .capture) {
        guard let name = error.interface else {
            self = .system(error)
            return
        }
        if error.isNoSuchInterface {
            self = .noSuchInterface(name, activity: activity)
        } else if error.errno == .networkDown {
            self = .interfaceDown(name, activity: activity)
        } else if error.isMissingPrivilege {
            self = .missingPrivilege(interface: name, activity: activity)
        } else {
            self = .system(error)
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
