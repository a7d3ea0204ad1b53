import WirecapCommandLine

// `wirecap-fwd` is `wirecap fwd` under its own name (see ForwardCommand).
runWithOneLineErrors(ForwardCommand.self, program: "wirecap-fwd")
