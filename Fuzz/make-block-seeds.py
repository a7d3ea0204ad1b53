#!/usr/bin/env python3
"""Writes a few TPACKET_V3 blocks (as the kernel lays them out) to Corpus/FuzzBlockWalk/, the
block walk's seeds: descriptor (num_pkts at 12, offset_to_first_pkt at 16, blk_len at 20), then
packets of tpacket3_hdr (next 0, sec 4, nsec 8, snaplen 12, len 16, status 20, mac 24, tci 32,
tpid 34), each frame at tp_mac, headers on 8-byte boundaries. The last four bytes of an input
are the target's options (limit, first, snap length, flags)."""
import os, struct

BLOCK = 16384
DESC = 48          # ALIGN(sizeof(tpacket_block_desc), 8)
MAC = 82           # ALIGN(TPACKET3_HDRLEN + 16, 16) + vlanReserve(4) - 14, as SyntheticBlock
USER, VLAN_VALID, VLAN_TPID_VALID = 1, 1 << 4, 1 << 6

def block(frames, vlan=False, options=b"\x03\x01\x10\x00"):
    b = bytearray(BLOCK)
    offset, previous = DESC, None
    for i, frame in enumerate(frames):
        status = USER | ((VLAN_VALID | VLAN_TPID_VALID) if vlan else 0)
        if previous is not None:
            struct.pack_into("<I", b, previous, offset - previous)
        struct.pack_into("<IIIIIIH", b, offset, 0, 1000 + i, 500, len(frame), len(frame) + 4, status, MAC)
        struct.pack_into("<HH", b, offset + 32, 0x0064, 0x8100)
        b[offset + MAC: offset + MAC + len(frame)] = frame
        previous = offset
        offset = (offset + MAC + len(frame) + 7) & ~7
    struct.pack_into("<III", b, 12, len(frames), DESC, offset)
    used = offset + 4
    return bytes(b[:offset]) + options

eth = bytes.fromhex("ffffffffffff0200000000010800") + bytes(range(46))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus", "FuzzBlockWalk")
os.makedirs(out, exist_ok=True)
seeds = {
    "one-frame": block([eth]),
    "three-frames": block([eth, eth[:20], eth + bytes(100)]),
    "vlan-frames": block([eth, eth[:16]], vlan=True, options=b"\x05\x00\x20\x00"),
    "full-size": block([eth + bytes(1446)] * 9, options=b"\x07\x02\x00\x01"),
    "empty": block([]),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
