import WirecapEngine
import WirecapIDS
import WirecapSandbox

/// The lab's handler: the ledger's check of every frame, then, in the ids scenario, the example
/// IDS's inspection (a flow table and byte signatures over the whole frame) as the per-packet
/// work, the same in every engine.
struct InspectedHandler<Inner: PacketHandler>: PacketHandler {
    var inner: Inner
    var inspector: Inspector?

    @inline(__always)
    mutating func handle(_ packet: Packet) {
        inner.handle(packet)
        inspector?.handle(packet)
    }

    mutating func blockDone(queue: Int) { inner.blockDone(queue: queue) }
}

/// What every engine of a run does per packet: the flow-order check as the thread takes the
/// frame up, then the ledger, the inspection (ids) and the work.
typealias LabHandler = FlowOrder.Handler<WorkingHandler<InspectedHandler<SequenceLedger.Handler>>>

extension ExperimentPoint {
    /// The work mode of the ids scenario: no synthetic work, the inspector instead.
    package static let idsWorkMode = "ids"

    /// Sixteen content matches of the kind IDS rules carry (HTTP methods and headers, shell and
    /// SQL injection strings, NOP sleds), each searched for in the whole of every frame: about
    /// 4.4 us a packet on this machine over example.pcap (wirecap-ids -r, release build).
    package static let idsSignatures = [
        "GET ", "POST ", "HTTP/1.", "Host: ", "User-Agent: ", "cmd.exe", "/bin/sh", "/etc/passwd", "SELECT ", "UNION ", "<script",
        "eval(", "hex:deadbeef", "hex:90909090", "root", "admin",
    ]

    func handler(ledger: SequenceLedger, order: FlowOrder, queue: Int) -> LabHandler {
        let inspector = workMode == Self.idsWorkMode ? Inspector(signatures: Self.idsSignatures.map { try! Signature(parsing: $0) }) : nil
        return order.handler(slot: queue, inner: WorkingHandler(InspectedHandler(inner: ledger.handler(queue: queue), inspector: inspector), work: work))
    }
}
