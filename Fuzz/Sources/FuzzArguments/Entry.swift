import FuzzSupport

// The executable's entry point, named as SwiftPM links it (see FuzzSupport.runFuzzer).
@_cdecl("FuzzArguments_main")
func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
