#if canImport(Glibc)
import Glibc
#endif
import WirecapLinux

/// Three private network namespaces in a line, for a forwarder: frames sent on `senderInterface`
/// arrive on `inputInterface` in `forwarder`'s namespace; what the forwarder sends on
/// `outputInterface` arrives on `sinkInterface` in `sink`'s namespace, and nowhere else.
///
/// Built as `Sandbox` is: unique names, the pairs made inside the namespaces, IPv6 off in each
/// before any pair exists, no addresses (the test frames carry 198.18.0.0/15 but nothing routes
/// them: forwarding between the two pairs is the forwarder's alone), torn down whatever happens,
/// stale ones removed by the next sandbox.
public final class ForwardingSandbox: @unchecked Sendable {
    // @unchecked: immutable except `tornDown`, which only the owner's `tearDown` touches.
    public let sender: NetworkNamespace
    public let forwarder: NetworkNamespace
    public let sink: NetworkNamespace
    public let senderInterface = "wcsend0"
    /// IN: the forwarder's end of the sender's pair.
    public let inputInterface = "wcfin0"
    /// OUT: the forwarder's end of the sink's pair.
    public let outputInterface = "wcfout0"
    public let sinkInterface = "wcsink0"
    /// More outputs of the forwarder (`wcfout1`, ...), each paired with a sink interface in the
    /// sink's namespace (`wcsink1`, ...), in the same order.
    public let additionalOutputs: [(output: String, sink: String)]
    private var tornDown = false

    /// - Parameters:
    ///   - queues: receive and transmit queues on every veth end.
    ///   - mtu: MTU of the sender's pair; `outputMTU` of the sink's (default: the same).
    ///   - additionalOutputs: more pairs from the forwarder to the sink.
    public init(queues: Int = 1, mtu: Int = 1500, outputMTU: Int? = nil, additionalOutputs: Int = 0) throws {
        if let reason = Sandbox.unavailableReason { throw Command.Failure(command: ["sandbox"], status: 1, output: reason) }
        Sandbox.removeStale()
        let id = Sandbox.uniqueName()
        sender = NetworkNamespace(name: id + "-tx")
        forwarder = NetworkNamespace(name: id + "-fw")
        sink = NetworkNamespace(name: id + "-rx")
        self.additionalOutputs = (0..<max(0, additionalOutputs)).map { ("wcfout\($0 + 1)", "wcsink\($0 + 1)") }
        do {
            for ns in [sender, forwarder, sink] { try Sandbox.addNamespace(ns) }
            try Sandbox.addVeth(senderInterface, in: sender, peer: inputInterface, in: forwarder, queues: queues, mtu: mtu)
            try Sandbox.addVeth(outputInterface, in: forwarder, peer: sinkInterface, in: sink, queues: queues, mtu: outputMTU ?? mtu)
            for (output, peer) in self.additionalOutputs {
                try Sandbox.addVeth(output, in: forwarder, peer: peer, in: sink, queues: queues, mtu: outputMTU ?? mtu)
            }
            // The kernel reports a veth's carrier (IFF_RUNNING) through linkwatch, which may
            // delay it by up to a second after the pair is up, and a TX ring refuses an interface
            // without one: the first pair's ends were seen without it when --bidirectional
            // opened a TX ring on IN right away.
            let ends = [(sender, senderInterface), (forwarder, inputInterface), (forwarder, outputInterface), (sink, sinkInterface)]
                + self.additionalOutputs.flatMap { [(forwarder, $0.output), (sink, $0.sink)] }
            for (ns, name) in ends {
                try Self.waitForCarrier(name, in: ns)
            }
        } catch {
            tearDown()
            throw error
        }
    }

    /// Waits (up to 3 s, linkwatch's delay is at most 1 s) until `name` in `ns` reports a carrier.
    static func waitForCarrier(_ name: String, in ns: NetworkNamespace) throws {
        for _ in 0..<300 {
            if try ns.run({ try WirecapLinux.NetworkInterface(named: name).isRunning }) { return }
            usleep(10_000)
        }
        throw Command.Failure(command: ["ip", "-n", ns.name, "link", "show", name], status: 1, output: "\(name) has no carrier 3 s after it was brought up")
    }

    /// Builds a sandbox, runs `body` with it, and tears it down whatever happens.
    public static func with<T>(
        queues: Int = 1, mtu: Int = 1500, outputMTU: Int? = nil, additionalOutputs: Int = 0, _ body: (ForwardingSandbox) throws -> T
    ) throws -> T {
        let sandbox = try ForwardingSandbox(queues: queues, mtu: mtu, outputMTU: outputMTU, additionalOutputs: additionalOutputs)
        defer { sandbox.tearDown() }
        return try body(sandbox)
    }

    /// Removes the three namespaces; the veth pairs go with them.
    public func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for ns in [sender, forwarder, sink] { _ = try? Command.run(["ip", "netns", "delete", ns.name]) }
    }

    deinit { tearDown() }
}
