import Foundation

extension PcapHandle {
    /// The file's packets as owned copies, for `for try await` code: read on a thread of its own;
    /// a truncated file ends the sequence with libpcap's error after the intact records.
    public func packets() -> AsyncThrowingStream<OwnedPacket, any Error> {
        AsyncThrowingStream { continuation in
            let thread = Thread { [self] in
                do {
                    while let packet = try self.next() { continuation.yield(packet) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.start()
        }
    }
}
