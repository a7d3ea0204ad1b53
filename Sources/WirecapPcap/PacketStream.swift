import Foundation
import Synchronization
import WirecapEngine

extension PcapHandle {
    /// The packets as owned copies, for `for try await` code. A thread of its own reads (a file
    /// with `next()`, a live handle with `loop`) and hands copies over; ending the iteration
    /// stops it (live: `breakLoop()`). A truncated file ends the sequence with libpcap's error
    /// after the intact records. Copies allocate: this is the convenient path, `dispatch` and
    /// `loop` are the fast one.
    public func packets() -> AsyncThrowingStream<OwnedPacket, any Error> {
        AsyncThrowingStream { continuation in
            let stopped = Atomic<Bool>(false)
            let thread = Thread { [self] in
                do {
                    if isLive {
                        let precision = self.precision
                        _ = try loop { packet in continuation.yield(OwnedPacket(copying: packet, precision: precision)) }
                    } else {
                        while !stopped.load(ordering: .acquiring), let packet = try next() { continuation.yield(packet) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [self] _ in
                stopped.store(true, ordering: .releasing)
                breakLoop()
            }
            thread.start()
        }
    }
}
