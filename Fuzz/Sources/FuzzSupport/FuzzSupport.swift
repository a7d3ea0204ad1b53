import Glibc

// What every fuzz target shares: handing control to libFuzzer's driver, and (for the targets
// whose code under test takes a path) the input written to a file on tmpfs.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

/// Runs libFuzzer's driver over `callback`, as libFuzzer's own main would. SwiftPM links an
/// executable target with its entry point named `TARGET_main`; with -parse-as-library there is no
/// top-level code to be it, so each target's Entry.swift defines that symbol and calls this.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}

/// A per-process file on tmpfs (or /tmp) for inputs the code under test reads by path.
public func inputFilePath(_ name: String) -> String {
    let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(directory)/wirecap-fuzz-\(name)-\(getpid())"
}

/// Writes the fuzzer's input to `path`, whole; false if it could not.
public func writeInput(_ data: UnsafePointer<UInt8>, _ size: Int, to path: String) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var written = 0
    while written < size {
        let n = write(fd, data + written, size - written)
        guard n > 0 else { return false }
        written += n
    }
    return true
}
