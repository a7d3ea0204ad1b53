// What code written against the facade names, without importing the engine itself: the
// borrowed packet, the handler protocol for the fast path, the fanout modes of `LiveOptions`
// and the counters `engineStatistics()` returns.
@_exported import struct WirecapEngine.Packet
@_exported import protocol WirecapEngine.PacketHandler
@_exported import enum WirecapEngine.FanoutMode
@_exported import struct WirecapEngine.CaptureStatistics
@_exported import struct WirecapEngine.QueueStatistics
