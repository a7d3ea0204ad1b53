import WirecapEngine
@testable import WirecapCommandLine

// Fuzzes the option parsing and checking of the tools whose commands live in a library module:
// `wirecap-fwd` (and `wirecap fwd`), ForwardCommand. One input is a command line, its arguments
// separated by NUL bytes (each decoded as UTF-8, invalid sequences repaired, as the shell would
// pass them). It is parsed as the tool parses it (parseAsRoot); a command that parses goes through everything `run` checks before it opens
// anything (`checked`, the filter compiled as for a file, so no socket opens), its --duration
// deadline is computed, and the signatures are searched for in the input. Any error is fine; a
// trap or a crash is a finding.
//
// `wirecap capture` parses in the `wirecap` executable, which a fuzz target cannot import; its
// shared pieces (DurationOption, FilterExpression, the flag names) are the ones run here.

nonisolated(unsafe) var sink: UInt64 = 0

/// A monotonic clock a century after boot: the latest start a deadline is computed from.
let latestStart: UInt64 = 100 * 365 * 86_400 * 1_000_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let arguments = input.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    let command: ForwardCommand
    do {
        guard let parsed = try ForwardCommand.parseAsRoot(arguments) as? ForwardCommand else { return 0 }
        command = parsed
    } catch {
        // A refusal is not rendered as runWithOneLineErrors renders it: ArgumentParser builds the
        // usage text for that, which took three quarters of the time of an input it refused.
        return 0
    }
    guard let (signatures, configurations) = try? command.checked(openingNothing: true) else { return 0 }
    if let deadline = DurationOption.deadline(command.duration, from: latestStart) {
        // Not after: a positive duration under a nanosecond (1e-12) is a deadline of now.
        precondition(deadline >= latestStart, "--duration \(command.duration!) ends before it starts")
        sink &+= deadline
    }
    for configuration in configurations {
        // A checked configuration is one the engine accepts too.
        do { try configuration.capture.validate() } catch { preconditionFailure("checked, then refused: \(error)") }
        sink &+= UInt64(configuration.capture.filter?.count ?? 0) &+ UInt64(configuration.transmitFrames)
    }
    let bytes = UnsafeRawBufferPointer(input)
    for signature in signatures where signature.occurs(in: bytes) { sink &+= 1 }
    return 0
}
