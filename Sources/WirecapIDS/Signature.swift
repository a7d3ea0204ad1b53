import CWirecapLinux

/// A byte pattern to find anywhere in a frame, as an IDS rule's content match.
public struct Signature: Sendable {
    public let name: String
    public let bytes: [UInt8]

    public struct Invalid: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "--signature \(text) is not text or hex:HEXDIGITS (e.g. hex:deadbeef)" }
    }

    /// Text as its UTF-8 bytes, or hex:HEXDIGITS.
    public init(parsing text: String) throws {
        if text.hasPrefix("hex:") {
            let digits = Array(text.dropFirst(4))
            guard !digits.isEmpty, digits.count % 2 == 0 else { throw Invalid(text: text) }
            var bytes: [UInt8] = []
            for index in stride(from: 0, to: digits.count, by: 2) {
                guard let byte = UInt8(String(digits[index...index + 1]), radix: 16) else { throw Invalid(text: text) }
                bytes.append(byte)
            }
            self.bytes = bytes
        } else {
            guard !text.isEmpty else { throw Invalid(text: text) }
            bytes = Array(text.utf8)
        }
        name = text
    }

    /// Whether the pattern occurs anywhere in `frame`.
    @inlinable
    public func occurs(in frame: UnsafeRawBufferPointer) -> Bool {
        guard let base = frame.baseAddress else { return false }
        return bytes.withUnsafeBytes { needle in
            CWirecapLinux_memmem(base, frame.count, needle.baseAddress, needle.count) != nil
        }
    }
}
