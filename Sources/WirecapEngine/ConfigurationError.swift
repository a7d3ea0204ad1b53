#if canImport(Glibc)
import Glibc
#endif

/// A capture configuration the engine refuses, or memory its sizes could not get, as a value:
/// which parameter, the value given, and what would work.
///
/// `description` names parameters as `CaptureConfiguration` spells them (`ring.blockSize`); a
/// front end that spells them otherwise renders the same value with `description(naming:)` (the
/// command line its flags, the pcap facade its `LiveOptions`), so the words are chosen where they
/// are shown and the checks live in one place, `CaptureConfiguration.validate()`.
public enum ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A setting of `CaptureConfiguration`, by what it means rather than by one spelling of it.
    public enum Parameter: String, CaseIterable, Sendable {
        case interface, queues, blockSize, blockCount, blockTimeout, snapLength, poolChunks, lockMemory
        case offloadThreshold, buddyGroups, filter

        /// The parameter's place in `CaptureConfiguration`.
        public var configurationName: String {
            switch self {
            case .interface: "interface"
            case .queues: "queues"
            case .blockSize: "ring.blockSize"
            case .blockCount: "ring.blockCount"
            case .blockTimeout: "ring.blockTimeoutMilliseconds"
            case .snapLength: "snapLength"
            case .poolChunks: "pool.chunks"
            case .lockMemory: "pool.lockMemory"
            case .offloadThreshold: "offload.threshold"
            case .buddyGroups: "offload.groups"
            case .filter: "filter"
            }
        }
    }

    /// The interface name is empty.
    case missingInterface
    /// A whole number outside what the engine or the kernel takes.
    case outOfRange(Parameter, value: Int, allowed: ClosedRange<Int>)
    /// A size that must be a positive multiple of the page size; `suggestion` is the next one up.
    case notPageMultiple(Parameter, value: Int, page: Int, suggestion: Int)
    /// A fraction outside 0...1.
    case notAFraction(Parameter, value: Double)
    /// `blockCount` blocks of `blockSize` bytes exceed the `limit` bytes allowed for one ring.
    case ringTooLarge(blockSize: Int, blockCount: Int, limit: Int)
    /// A block that cannot hold one packet of `snapLength` bytes and its headers (`needed` bytes
    /// in all); `suggestion` is the smallest page multiple that can.
    case blockTooSmall(blockSize: Int, needed: Int, snapLength: Int, suggestion: Int)
    /// `chunks` x `blockSize` x `queues` = `bytes` of pool memory, more than the engine takes of
    /// this machine's `physical` bytes (nine tenths).
    case poolTooLarge(chunks: Int, blockSize: Int, queues: Int, bytes: Int, physical: Int)
    /// Offloading was asked for without a ring-buffer pool.
    case offloadNeedsPool
    /// Chunks were asked for (`startCapture`, `startWorkers`) from an engine without a ring-buffer pool.
    case chunksNeedPool
    /// Buddy groups that do not name each of the `queues` queues exactly once.
    case buddyGroupsIncomplete([[Int]], queues: Int)
    /// A filter program of `count` instructions, outside the kernel's 1...4096.
    case filterLength(Int)
    /// The kernel refused the filter program on `interface` (EINVAL: not valid classic BPF).
    case filterRefused(interface: String)
    /// The kernel had no memory for a ring of `blockCount` blocks of `blockSize` bytes (ENOMEM).
    case ringAllocationFailed(interface: String, blockSize: Int, blockCount: Int)
    /// The kernel had no memory for a `bytes`-byte transmit ring (ENOMEM); its size follows the
    /// MTU, not a parameter.
    case transmitRingAllocationFailed(interface: String, bytes: Int)
    /// No memory for queue `queue`'s pool of `chunks` chunks of `chunkSize` bytes.
    case poolAllocationFailed(queue: Int, chunks: Int, chunkSize: Int)
    /// mlock of queue `queue`'s `bytes`-byte pool failed with `errno`, under the lock policy
    /// `.required`; `limit` is RLIMIT_MEMLOCK in bytes, nil when unlimited.
    case poolLockFailed(queue: Int, bytes: Int, errno: Int32, limit: UInt64?)

    public var description: String { description(naming: \.configurationName) }

    /// One line in the words of the front end that `name` spells parameters for.
    public func description(naming name: (Parameter) -> String) -> String {
        switch self {
        case .missingInterface:
            return "\(name(.interface)) is empty: name an interface to capture on (see `ip link`)"
        case .outOfRange(let parameter, let value, let allowed):
            return "\(name(parameter)) \(value) is out of range: use \(allowed.lowerBound) to \(allowed.upperBound)\(Self.unit(parameter))"
        case .notPageMultiple(let parameter, let value, let page, let suggestion):
            return "\(name(parameter)) \(value) is not a positive multiple of the page size \(page): try \(suggestion)"
        case .notAFraction(let parameter, let value):
            return "\(name(parameter)) \(value) is out of range: use a fraction from 0 to 1 (0.5 is typical)"
        case .ringTooLarge(let blockSize, let blockCount, let limit):
            return "\(name(.blockCount)) \(blockCount) x \(name(.blockSize)) \(blockSize) makes a ring over \(limit) bytes: lower \(name(.blockCount)) or \(name(.blockSize))"
        case .blockTooSmall(let blockSize, let needed, let snapLength, let suggestion):
            return "\(name(.blockSize)) \(blockSize) is smaller than one packet of snap length \(snapLength) plus headers (\(needed) bytes): raise \(name(.blockSize)) to \(suggestion) or lower \(name(.snapLength))"
        case .poolTooLarge(let chunks, let blockSize, let queues, let bytes, let physical):
            return "\(name(.poolChunks)) \(chunks) x \(name(.blockSize)) \(blockSize) x \(name(.queues)) \(queues) needs \(bytes) bytes of pool memory, more than this machine's \(physical) can spare: lower \(name(.poolChunks)) or \(name(.blockSize))"
        case .offloadNeedsPool:
            return "offloading moves pool chunks between queues: give \(name(.poolChunks)) 1 or more with \(name(.offloadThreshold))"
        case .chunksNeedPool:
            return "chunks need the ring-buffer pool: set \(name(.poolChunks)) to 1 or more"
        case .buddyGroupsIncomplete(let groups, let queues):
            return "\(name(.buddyGroups)) must name every queue 0...\(queues - 1) exactly once: \(Self.flaw(in: groups, queues: queues))"
        case .filterLength(let count):
            return "\(name(.filter)) has \(count) instructions: the kernel takes 1 to 4096 (simplify the expression)"
        case .filterRefused(let interface):
            return "\(name(.filter)) is not a valid classic BPF program: the kernel refused it on \(interface)"
        case .ringAllocationFailed(let interface, let blockSize, let blockCount):
            return "cannot allocate a ring of \(blockCount) blocks of \(blockSize) bytes on \(interface): the kernel is out of memory for it (lower \(name(.blockCount)) or \(name(.blockSize)))"
        case .transmitRingAllocationFailed(let interface, let bytes):
            return "cannot allocate a \(bytes)-byte transmit ring on \(interface): the kernel is out of memory for it (free memory, or lower the MTU)"
        case .poolAllocationFailed(let queue, let chunks, let chunkSize):
            return "cannot allocate a pool of \(chunks) chunks of \(chunkSize) bytes for queue \(queue): out of memory (lower \(name(.poolChunks)) or \(name(.blockSize)))"
        case .poolLockFailed(let queue, let bytes, let code, let limit):
            return "cannot lock the \(bytes)-byte pool of queue \(queue) in memory (\(String(cString: strerror(code))); RLIMIT_MEMLOCK is \(limit.map { "\($0) bytes" } ?? "unlimited")): raise it with `ulimit -l`, run as root, or turn \(name(.lockMemory)) off"
        }
    }

    /// The unit of a parameter's range, and what is usual where that helps choose.
    private static func unit(_ parameter: Parameter) -> String {
        switch parameter {
        case .queues: " (one per core is typical)"
        case .blockSize, .snapLength: " bytes"
        case .blockCount: " (8 or more is typical)"
        case .blockTimeout: " ms (0: the kernel picks)"
        case .poolChunks: " (64 is typical)"
        default: ""
        }
    }

    /// What is wrong with a set of buddy groups, for the first flaw found.
    static func flaw(in groups: [[Int]], queues: Int) -> String {
        if groups.contains(where: \.isEmpty) { return "a group is empty" }
        let all = 0..<max(queues, 0)
        var seen = Set<Int>()
        for queue in groups.joined() {
            if !all.contains(queue) { return "there is no queue \(queue)" }
            if !seen.insert(queue).inserted { return "queue \(queue) is named twice" }
        }
        let missing = all.filter { !seen.contains($0) }
        if missing.count == 1 { return "queue \(missing[0]) is in no group" }
        return missing.isEmpty ? "the groups are fine" : "queues \(missing.map(String.init).joined(separator: ", ")) are in no group"
    }
}
