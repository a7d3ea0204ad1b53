import CWirecapLinux
import CWirecapNuma

/// Where each queue's capture thread runs and where its ring's memory comes from.
///
/// Queues are spread round robin over the CPUs this process may run on. On a NUMA machine the
/// ring of a queue is allocated while the opening thread prefers that CPU's node, so the kernel
/// places the ring next to the core that reads it; on a single-node machine that is a no-op.
package struct CPUPlacement: Sendable {
    package let cpus: [Int]
    package let nodes: [Int]

    package static func allowedCPUs() -> [Int] {
        var buffer = [Int32](repeating: 0, count: 1024)
        let n = CWirecapLinux_allowed_cpus(&buffer, Int32(buffer.count))
        return n > 0 ? buffer[0..<Int(n)].map(Int.init) : [0]
    }

    package static var numaAvailable: Bool { numa_available() >= 0 }

    package init(queues: Int, allowed: [Int] = CPUPlacement.allowedCPUs()) {
        let cpus = (0..<queues).map { allowed[$0 % allowed.count] }
        self.cpus = cpus
        if Self.numaAvailable {
            nodes = cpus.map { max(0, Int(numa_node_of_cpu(Int32($0)))) }
        } else {
            nodes = cpus.map { _ in 0 }
        }
    }

    /// Runs `body` with the calling thread preferring memory from `node`, then goes back to
    /// local allocation.
    func withPreferredNode<T>(_ node: Int, _ body: () throws(CaptureError) -> T) throws(CaptureError) -> T {
        guard Self.numaAvailable else { return try body() }
        numa_set_preferred(Int32(node))
        defer { numa_set_localalloc() }
        return try body()
    }
}
