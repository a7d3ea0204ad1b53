import WirecapEngine
import WirecapSavefile

/// Why a forwarder could not be opened, as values; `description` is one line that names the
/// thing and the fix.
public enum ForwardError: Error, Equatable, CustomStringConvertible {
    /// IN and OUT are one interface: every forwarded frame would be captured again.
    case sameInterface(String)
    /// OUT cannot carry every frame IN can receive.
    case outputMTUTooSmall(input: String, inputMTU: Int, output: String, outputMTU: Int)
    /// Forwarding pulls chunks: the capture needs a pool (back-pressure works through it).
    case needsPool
    /// Opening the capture on IN or a TX ring on OUT failed.
    case capture(CaptureError)
    /// The tap's savefile could not be opened or written.
    case tapFile(SavefileError)

    public var description: String { description(naming: { "\($0)" }) }

    /// With configuration parameters spelled by `name` (a front end's flags).
    public func description(naming name: (ConfigurationError.Parameter) -> String) -> String {
        switch self {
        case .sameInterface(let interface):
            return "cannot forward \(interface) to itself: every frame sent would be captured again (give another output interface)"
        case .outputMTUTooSmall(let input, let inputMTU, let output, let outputMTU):
            return "cannot forward \(input) (MTU \(inputMTU)) to \(output) (MTU \(outputMTU)): larger frames could not leave (raise it: `ip link set \(output) mtu \(inputMTU)`)"
        case .needsPool:
            return "forwarding needs the chunk pool: give it a pool of one chunk per queue or more"
        case .capture(let error):
            return error.description(naming: name)
        case .tapFile(let error):
            return "cannot write the tap file \(error)"
        }
    }
}
