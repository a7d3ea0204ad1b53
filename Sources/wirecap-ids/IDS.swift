import ArgumentParser
import Foundation
import WirecapEngine
import WirecapIDS
import WirecapPcap

/// An example of the pcap facade in use: a minimal IDS that counts flows and matches byte
/// signatures in every packet, from a file or live from N queues. It also serves as a realistic
/// per-packet load.
@main
struct IDS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wirecap-ids",
        abstract: "A minimal IDS over wirecap's pcap facade: counts flows and matches byte signatures.")

    @Option(name: .short, help: "Interface to capture on.")
    var i: String?

    @Option(name: .short, help: "Read a pcap or pcapng file instead.")
    var r: String?

    @Option(help: "Queues for a live capture.")
    var queues: Int = 1

    @Option(help: "A signature to look for: text, or hex:DEADBEEF. Repeat for several.")
    var signature: [String] = []

    @Option(name: .short, help: "Stop after this many packets.")
    var c: Int?

    @Option(help: "Stop a live capture after this many seconds.")
    var duration: Double = 10

    @Argument(help: "A filter expression in tcpdump's syntax.")
    var expression: [String] = []

    func run() throws {
        let signatures: [Signature]
        do {
            signatures = try signature.map(Signature.init(parsing:))
        } catch {
            throw fail("\(error)")
        }
        var engine = Inspector(signatures: signatures)
        let filter = expression.isEmpty ? nil : expression.joined(separator: " ")
        do {
            // One handle type for both, as with pcap_t: only the open differs.
            let handle: PcapHandle
            switch (i, r) {
            case (nil, let path?):
                handle = try PcapHandle.openOffline(path: path, precision: .nano)
                if let filter { try handle.setFilter(filter) }
            case (let device?, nil):
                var options = PcapHandle.LiveOptions()
                options.queues = queues
                options.filter = filter
                options.timeoutMilliseconds = 100
                handle = try PcapHandle.openLive(device: device, options: options)
            default:
                throw fail("give an interface with -i or a file with -r (one of them)")
            }
            if handle.isLive {
                let deadline = Date().addingTimeInterval(duration)
                while Date() < deadline && (c == nil || engine.packets < c!) {
                    _ = try handle.dispatch(count: c.map { $0 - engine.packets } ?? -1, handler: &engine)
                }
            } else {
                _ = try handle.loop(count: c ?? -1, handler: &engine)
            }
            handle.close()
        } catch let error as PcapError {
            // The engine's refusals, kept under the facade's text, in this command's flags.
            throw fail(error.underlying?.description(naming: Self.flag) ?? error.message)
        }
        print(engine.report())
    }

    /// As `wirecap`: the parser's own errors as one line that points at the help.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("wirecap-ids: \(message.replacingOccurrences(of: "Error: ", with: "")) (see `wirecap-ids --help`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }

    /// The flag that sets an engine parameter here; what this command does not set, the
    /// facade's name for it.
    static func flag(_ parameter: ConfigurationError.Parameter) -> String {
        switch parameter {
        case .interface: "-i"
        case .queues: "--queues"
        case .filter: "the filter expression"
        default: parameter.liveOptionName
        }
    }

    func fail(_ message: CustomStringConvertible) -> ExitCode {
        FileHandle.standardError.write(Data("wirecap-ids: \(message)\n".utf8))
        return .failure
    }
}
