import Foundation
import Logging

/// Log lines in the tool's own voice: `wirecap: warning: ...` on standard error, one line each.
struct StderrLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        FileHandle.standardError.write(Data("wirecap: \(event.level): \(event.message)\n".utf8))
    }

    static let bootstrap: Void = LoggingSystem.bootstrap { _ in StderrLogHandler() }
}
