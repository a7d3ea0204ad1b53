// A first capture: every packet on an interface, counted per queue, over four fanout queues.
// Usage: first-capture IFACE [SECONDS]   (as root, or with CAP_NET_RAW)
import Foundation
import WirecapEngine

struct Counter: PacketHandler {
    var packets = 0
    mutating func handle(_ packet: Packet) { packets += 1 }
}

let arguments = CommandLine.arguments.dropFirst()
let configuration = CaptureConfiguration(interface: arguments.first ?? "eth0", queues: 4)
do {
    let engine = try CaptureEngine(configuration: configuration)
    try engine.start { _ in Counter() }
    Thread.sleep(forTimeInterval: Double(arguments.dropFirst().first ?? "") ?? 10)
    engine.stop()
    for queue in engine.statistics().queues {
        print("queue \(queue.queue): \(queue.processed) packets, \(queue.captureDrops) dropped")
    }
} catch {
    print("first-capture: \(error)")
}
