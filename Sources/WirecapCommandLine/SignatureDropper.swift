import WirecapEngine
import WirecapForward
import WirecapIDS

/// The example IPS: drops every frame that contains one of the signatures (the example IDS's
/// byte patterns, `WirecapIDS.Signature`), forwards the rest unchanged.
struct SignatureDropper: VerdictHandler {
    let signatures: [Signature]

    mutating func verdict(_ frame: inout ForwardFrame) -> Verdict {
        let bytes = UnsafeRawBufferPointer(frame.bytes)
        for signature in signatures where signature.occurs(in: bytes) { return .drop }
        return .forward
    }
}
