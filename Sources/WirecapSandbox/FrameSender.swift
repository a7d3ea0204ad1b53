#if canImport(Glibc)
import Glibc
#endif
import CWirecapLinux
import WirecapEngine
import WirecapLinux

/// Injects exact frames on one interface through an AF_PACKET socket.
///
/// The socket is bound with protocol 0, so it never receives, and bypasses the qdisc, so a frame
/// goes straight to the driver (on veth: straight into the peer's receive path, on this core).
/// Open it inside the namespace that holds the interface; it can send from any thread after.
public final class FrameSender: @unchecked Sendable {
    // @unchecked: the socket is used by one sending thread at a time.
    public let interface: String
    let socket: PacketSocket

    /// Why the kernel refused a frame, for the report of a replay.
    public enum Refusal: String, Sendable, CaseIterable {
        case overMTU = "over the MTU"
        case runt = "shorter than an Ethernet header"
        case other = "other"
    }

    public struct Report: Sendable {
        public var sent = 0
        public var bytes = 0
        public var refused: [Refusal: Int] = [:]
        public var seconds = 0.0
        public var packetsPerSecond: Double { seconds > 0 ? Double(sent) / seconds : 0 }
    }

    /// `bypassingQdisc: false` sends as libpcap's pcap_inject does, through the qdisc, where
    /// other packet sockets on the interface see the frame as outgoing; bypassing is faster but
    /// invisible to captures on the sending side.
    public init(interface: String, bypassingQdisc: Bool = true) throws(CaptureError) {
        self.interface = interface
        do throws(SystemError) {
            let device = try NetworkInterface(named: interface)
            socket = try PacketSocket(interface: interface)
            if bypassingQdisc { try socket.setQdiscBypass(true) }
            try socket.bind(interfaceIndex: device.index)
        } catch {
            throw CaptureError(error, activity: .send)
        }
    }

    /// Why the kernel refused a frame of `length` bytes, from the errno of the send.
    static func refusal(_ error: SystemError, length: Int) -> Refusal {
        if error.errno == .messageTooLong { return .overMTU }
        if error.errno == .invalidArgument && length < 14 { return .runt }
        return .other
    }

    /// Sends one frame; returns nil when sent, or why the kernel refused it. A full device queue
    /// (ENOBUFS, EAGAIN) is waited out, not reported as a refusal.
    public func send(_ frame: UnsafeRawBufferPointer) -> Refusal? {
        while true {
            do throws(SystemError) {
                if try socket.send(frame) == frame.count { return nil }
            } catch {
                if error.isBusy {
                    sched_yield()
                    continue
                }
                return Self.refusal(error, length: frame.count)
            }
        }
    }

    /// Sends frames `first..<first+count` made by `frames`, in batches of `sendmmsg`, at `rate`
    /// frames per second (nil: as fast as the kernel takes them). With `prebuilt`, every frame is
    /// made before the clock starts, so the send rate does not depend on how fast frames are made
    /// (in a debug build that is slower than the kernel). With `stampSendTime`, every frame of a
    /// batch is stamped with CLOCK_REALTIME (`SequencedFrame.stamp`) just before the batch is
    /// handed to the kernel; a later frame of the batch leaves later than its stamp says, by up
    /// to the time the batch takes, so give a small `batch` when the stamp is used for latency.
    public func sendSequenced(
        _ frames: SequencedFrame, count: Int, first: UInt64 = 0, rate: Double? = nil, batch: Int = 256, prebuilt: Bool = false,
        stampSendTime: Bool = false
    ) -> Report {
        precondition(!stampSendTime || frames.size >= SequencedFrame.minimumStampedSize, "stamped frames need \(SequencedFrame.minimumStampedSize) bytes or more")
        let batch = max(1, min(batch, 1024, rate.map { max(1, Int($0 / 1000)) } ?? 1024))
        let size = frames.size
        let lengths = [UInt32](repeating: UInt32(size), count: batch)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: (prebuilt ? count : batch) * size, alignment: 64)
        defer { scratch.deallocate() }
        if prebuilt {
            for i in 0..<count {
                frames.write(sequence: first + UInt64(i), into: UnsafeMutableRawBufferPointer(rebasing: scratch[(i * size)...]))
            }
        }
        var report = Report()
        let start = CWirecapLinux_monotonic_ns()
        var sent = 0
        while sent < count {
            let n = min(batch, count - sent)
            let base: UnsafeMutableRawPointer
            if prebuilt {
                base = scratch.baseAddress! + sent * size
            } else {
                base = scratch.baseAddress!
                for i in 0..<n {
                    frames.write(sequence: first + UInt64(sent + i), into: UnsafeMutableRawBufferPointer(rebasing: scratch[(i * size)...]))
                }
            }
            if let rate { Self.pace(start: start, sent: sent, rate: rate) }
            if stampSendTime {
                let now = Self.realtimeNanoseconds()
                for i in 0..<n { SequencedFrame.stamp(sendTime: now, into: UnsafeMutableRawBufferPointer(start: base + i * size, count: size)) }
            }
            var done = 0
            while done < n {
                do throws(SystemError) {
                    done += try lengths.withUnsafeBufferPointer { lens throws(SystemError) in
                        try socket.send(frames: base + done * size, lengths: UnsafeBufferPointer(rebasing: lens[0..<(n - done)]))
                    }
                } catch {
                    if error.isBusy {
                        sched_yield()
                        continue
                    }
                    report.refused[Self.refusal(error, length: size), default: 0] += n - done
                    break
                }
            }
            report.sent += done
            report.bytes += done * size
            sent += n
        }
        report.seconds = Double(CWirecapLinux_monotonic_ns() - start) / 1e9
        return report
    }

    /// Sends `total` frames taken in turn from `frames` (looping over them), at `rate` frames per
    /// second or flat out, in `sendmmsg` batches. Frames the kernel refuses are counted by reason.
    public func sendLooped(_ frames: [[UInt8]], total: Int, rate: Double? = nil, batch: Int = 256) -> Report {
        var report = Report()
        guard !frames.isEmpty, total > 0 else { return report }
        let batch = max(1, min(batch, 1024, rate.map { max(1, Int($0 / 1000)) } ?? 1024))
        let maximum = frames.map(\.count).max() ?? 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * max(maximum, 1), alignment: 64)
        defer { scratch.deallocate() }
        var lengths = [UInt32](repeating: 0, count: batch)
        let start = CWirecapLinux_monotonic_ns()
        var sent = 0
        var next = 0
        while sent < total {
            let n = min(batch, total - sent)
            var offset = 0
            for i in 0..<n {
                let frame = frames[(next + i) % frames.count]
                frame.withUnsafeBytes { (scratch.baseAddress! + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                lengths[i] = UInt32(frame.count)
                offset += frame.count
            }
            if let rate { Self.pace(start: start, sent: sent, rate: rate) }
            var done = 0
            var position = 0
            while done < n {
                do throws(SystemError) {
                    let sent = try lengths.withUnsafeBufferPointer { lens throws(SystemError) in
                        try socket.send(frames: scratch.baseAddress! + position, lengths: UnsafeBufferPointer(rebasing: lens[done..<n]))
                    }
                    for i in done..<(done + sent) {
                        position += Int(lengths[i])
                        report.bytes += Int(lengths[i])
                    }
                    report.sent += sent
                    done += sent
                } catch {
                    if error.isBusy {
                        sched_yield()
                        continue
                    }
                    // This frame is refused: count it and go on with the next.
                    let length = Int(lengths[done])
                    report.refused[Self.refusal(error, length: length), default: 0] += 1
                    position += length
                    done += 1
                }
            }
            sent += n
            next = (next + n) % frames.count
        }
        report.seconds = Double(CWirecapLinux_monotonic_ns() - start) / 1e9
        return report
    }

    /// CLOCK_REALTIME in nanoseconds: the clock of a TPACKET_V3 capture's time stamps, shared by
    /// every network namespace.
    public static func realtimeNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Sleeps until frame `sent` is due at `rate` frames per second. Paces against the start time,
    /// not the previous batch, so that errors do not add up.
    static func pace(start: UInt64, sent: Int, rate: Double) {
        let due = start + UInt64(Double(sent) / rate * 1e9)
        let now = CWirecapLinux_monotonic_ns()
        guard due > now else { return }
        var ts = timespec(tv_sec: Int((due - now) / 1_000_000_000), tv_nsec: Int((due - now) % 1_000_000_000))
        nanosleep(&ts, nil)
    }
}
