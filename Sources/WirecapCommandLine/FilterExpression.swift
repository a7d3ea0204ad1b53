import WirecapEngine
import WirecapPcap

/// The trailing filter expression of `wirecap capture` and `wirecap-fwd`, tcpdump's words joined
/// by spaces, as tcpdump joins them.
public struct FilterExpression: Sendable {
    /// nil when no expression was given.
    public let text: String?

    public init(_ words: [String]) {
        text = words.isEmpty ? nil : words.joined(separator: " ")
    }

    /// An expression libpcap refused, in one line naming it and where the syntax is described.
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String

        public init(expression: String, reason: Error) {
            description = "bad filter expression '\(expression)': \(reason) (see `man pcap-filter`)"
        }
    }

    /// The program every queue's socket runs in the kernel on `device`, so a frame it rejects never
    /// reaches a ring: the expression compiled as libpcap compiles for a live handle on the device
    /// (VLAN through the kernel's metadata), with the direction test in front. nil: nothing to
    /// test, every frame is kept (cut to the snap length). Check the snap length first (the
    /// configuration's `validate()`): libpcap takes it as a C int. A nil `device` compiles as for
    /// a file, opening nothing: the same refusals, VLAN tested at byte 12 (what the fuzz target
    /// of the options checks).
    public func kernelProgram(device: String?, snapLength: Int, direction: PcapDirection = .inout) throws(Refusal) -> [BPFInstruction]? {
        var filter: [BPFInstruction]? = nil
        if let text {
            do {
                if let device {
                    filter = try BPFCompiler.compile(text, snapLength: snapLength, device: device)
                } else {
                    filter = try BPFCompiler.compile(text, snapLength: snapLength)
                }
            } catch {
                throw Refusal(expression: text, reason: error)
            }
        }
        return direction.kernelProgram(filter: filter, snapLength: snapLength)
    }
}
