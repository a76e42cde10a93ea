#!/usr/bin/env python3
"""Hand-built MRT dumps, BGP messages and pcaps for bgp-announce decode tests and benchmarks.

  bgpi_mrt.py edge DIR        one MRT file per edge case (DIR/<case>.mrt) + DIR/all.mrt
  bgpi_mrt.py bad DIR         bad inputs: truncated.mrt, garbage.mrt, badhdr.mrt
  bgpi_mrt.py bench OUT N     N BGP4MP update records (for the benchmark)
  bgpi_mrt.py pcap OUT        a synthetic BGP session capture with a retransmission,
                              reordered segments and two sessions (one 2-octet, one ADD-PATH)
  bgpi_mrt.py bench-pcap OUT N [single]  a capture of one session carrying N updates
                              (packed in full segments, or one per segment)
  bgpi_mrt.py pool-pcap OUT      two sessions, 12000 updates, with warnings, a new OPEN,
                              reordering and garbage after the first 4096 messages
"""
import ipaddress
import os
import random
import struct
import sys

# ---- BGP ----------------------------------------------------------------------------------
MARKER = b"\xff" * 16
IGP, EGP, INCOMPLETE = 0, 1, 2
AS_SET, AS_SEQ, AS_CONFED_SEQ, AS_CONFED_SET = 1, 2, 3, 4


def attr(type_, value, flags=None):
    if flags is None:
        flags = 0x40 if type_ in (1, 2, 3, 5, 6) else 0x80 if type_ in (4, 9, 10, 14, 15) else 0xC0
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, type_, len(value)) + value
    return struct.pack("!BBB", flags & ~0x10, type_, len(value)) + value


def aspath_value(segs, asn_len=4):
    out = b""
    for t, asns in segs:
        out += struct.pack("!BB", t, len(asns))
        for a in asns:
            out += struct.pack("!I" if asn_len == 4 else "!H", a)
    return out


def prefix(p, path_id=None):
    n = ipaddress.ip_network(p, strict=False)
    nb = (n.prefixlen + 7) // 8
    b = struct.pack("!B", n.prefixlen) + n.network_address.packed[:nb]
    if path_id is not None:
        b = struct.pack("!I", path_id) + b
    return b


def raw_prefix(addr_bytes, plen, path_id=None):
    b = struct.pack("!B", plen) + addr_bytes[: (plen + 7) // 8]
    return (struct.pack("!I", path_id) if path_id is not None else b"") + b


def community(s):
    names = {"no-export": 0xFFFFFF01, "no-advertise": 0xFFFFFF02, "local-as": 0xFFFFFF03}
    if s in names:
        return names[s]
    a, b = s.split(":")
    return int(a) << 16 | int(b)


def std_attrs(path, asn_len=4, origin=IGP, nh="192.0.2.1", med=None, lp=None, comms=None, atomic=False, agg=None, extra=b""):
    a = attr(1, bytes([origin])) if origin is not None else b""
    if path is not None:
        a += attr(2, aspath_value(path, asn_len))
    if nh is not None:
        a += attr(3, ipaddress.IPv4Address(nh).packed)
    if med is not None:
        a += attr(4, struct.pack("!I", med))
    if lp is not None:
        a += attr(5, struct.pack("!I", lp))
    if atomic:
        a += attr(6, b"")
    if agg is not None:
        a += attr(7, struct.pack("!I" if asn_len == 4 else "!H", agg[0]) + ipaddress.IPv4Address(agg[1]).packed)
    if comms:
        a += attr(8, b"".join(struct.pack("!I", community(c)) for c in comms))
    return a + extra


def mp_reach(afi, safi, nhs, prefixes_bytes):
    nh = b"".join(ipaddress.ip_address(x).packed for x in nhs)
    return attr(14, struct.pack("!HBB", afi, safi, len(nh)) + nh + b"\x00" + prefixes_bytes)


def mp_unreach(afi, safi, prefixes_bytes):
    return attr(15, struct.pack("!HB", afi, safi) + prefixes_bytes)


def bgp_msg(type_, body):
    return MARKER + struct.pack("!HB", 19 + len(body), type_) + body


def update(withdrawn=b"", attrs=b"", nlri=b""):
    return bgp_msg(2, struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri)


def open_msg(asn, router_id, hold=90, as4=True, addpath=None, families=((1, 1),)):
    caps = b""
    for afi, safi in families:
        caps += struct.pack("!BBHBB", 1, 4, afi, 0, safi)
    if as4:
        caps += struct.pack("!BBI", 65, 4, asn)
    if addpath:
        v = b"".join(struct.pack("!HBB", afi, safi, sr) for afi, safi, sr in addpath)
        caps += struct.pack("!BB", 69, len(v)) + v
    opt = struct.pack("!BB", 2, len(caps)) + caps
    my_as = asn if asn < 65536 else 23456
    return bgp_msg(1, struct.pack("!BHH", 4, my_as, hold) + ipaddress.IPv4Address(router_id).packed + struct.pack("!B", len(opt)) + opt)


KEEPALIVE = bgp_msg(4, b"")


def notification(code, sub, data=b""):
    return bgp_msg(3, struct.pack("!BB", code, sub) + data)


# ---- MRT ----------------------------------------------------------------------------------
def mrt(ts, type_, subtype, body, usec=None):
    if type_ == 17:
        return struct.pack("!IHHII", ts, type_, subtype, len(body) + 4, usec or 0) + body
    return struct.pack("!IHHI", ts, type_, subtype, len(body)) + body


def bgp4mp(ts, msg, subtype=4, peer_as=65001, local_as=65000, peer="192.0.2.1", local="192.0.2.254", et_usec=None, ifindex=0):
    as4 = subtype in (4, 5, 7, 9, 11)
    pa, la = ipaddress.ip_address(peer), ipaddress.ip_address(local)
    afi = 1 if pa.version == 4 else 2
    fmt = "!IIHH" if as4 else "!HHHH"
    body = struct.pack(fmt, peer_as, local_as, ifindex, afi) + pa.packed + la.packed + msg
    return mrt(ts, 17 if et_usec is not None else 16, subtype, body, et_usec)


def state_change(ts, old, new, as4=True, peer_as=65001, local_as=65000, peer="192.0.2.1", local="192.0.2.254", et_usec=None):
    pa, la = ipaddress.ip_address(peer), ipaddress.ip_address(local)
    afi = 1 if pa.version == 4 else 2
    fmt = "!IIHH" if as4 else "!HHHH"
    body = struct.pack(fmt, peer_as, local_as, 0, afi) + pa.packed + la.packed + struct.pack("!HH", old, new)
    return mrt(ts, 17 if et_usec is not None else 16, 5 if as4 else 0, body, et_usec)


def peer_index(ts, peers, collector="192.0.2.250", view=b""):
    body = ipaddress.IPv4Address(collector).packed + struct.pack("!H", len(view)) + view + struct.pack("!H", len(peers))
    for bgp_id, ip, asn, as4 in peers:
        a = ipaddress.ip_address(ip)
        t = (1 if a.version == 6 else 0) | (2 if as4 else 0)
        body += struct.pack("!B", t) + ipaddress.IPv4Address(bgp_id).packed + a.packed + struct.pack("!I" if as4 else "!H", asn)
    return mrt(ts, 13, 1, body)


def rib(ts, subtype, seq, pfx, entries):
    n = ipaddress.ip_network(pfx, strict=False)
    body = struct.pack("!IB", seq, n.prefixlen) + n.network_address.packed[: (n.prefixlen + 7) // 8] + struct.pack("!H", len(entries))
    for e in entries:
        idx, orig, attrs = e[0], e[1], e[2]
        body += struct.pack("!HI", idx, orig)
        if len(e) > 3:
            body += struct.pack("!I", e[3])
        body += struct.pack("!H", len(attrs)) + attrs
    return mrt(ts, 13, subtype, body)


def table_dump(ts, pfx, peer, peer_as, attrs, seq=0, orig=1000000000):
    n = ipaddress.ip_network(pfx, strict=False)
    pa = ipaddress.ip_address(peer)
    sub = 1 if n.version == 4 else 2
    body = struct.pack("!HH", 0, seq) + n.network_address.packed + struct.pack("!BBI", n.prefixlen, 1, orig) + pa.packed
    body += struct.pack("!HH", peer_as, len(attrs)) + attrs
    return mrt(ts, 12, sub, body)


def v6ll_reach(prefixes, nh="2001:db8::1", ll="fe80::1", addpath=False):
    pb = b"".join(prefix(p, i + 1 if addpath else None) for i, p in enumerate(prefixes))
    return mp_reach(2, 1, [nh, ll], pb)


# ---- the edge cases ---------------------------------------------------------------------------
def edge_cases():
    T = 1700000000
    c = {}
    # plain IPv4 update: communities incl. the well-known names bgpdump prints
    c["basic"] = bgp4mp(T, update(prefix("10.0.0.0/24") + prefix("10.0.1.0/24"),
                                  std_attrs([(AS_SEQ, [65001, 65002, 65003])], med=10, lp=200,
                                            comms=["65001:100", "no-export", "no-advertise", "local-as", "65535:666", "0:0"]),
                                  prefix("198.51.100.0/24") + prefix("203.0.113.128/25") + prefix("0.0.0.0/0")))
    c["as_set"] = bgp4mp(T + 1, update(attrs=std_attrs([(AS_SEQ, [65001, 65002]), (AS_SET, [65003, 65004, 65005])]),
                                       nlri=prefix("198.51.100.0/24")))
    c["as_set_middle"] = bgp4mp(T + 1, update(attrs=std_attrs([(AS_SEQ, [65001]), (AS_SET, [65003, 65004]), (AS_SEQ, [65009])]),
                                              nlri=prefix("198.51.101.0/24")))
    c["confed"] = bgp4mp(T + 2, update(attrs=std_attrs([(AS_CONFED_SEQ, [64512, 64513]), (AS_CONFED_SET, [64514, 64515]),
                                                        (AS_SEQ, [65001, 65002])]), nlri=prefix("198.51.102.0/24")))
    # 2-octet session: AS_TRANS in AS_PATH and AGGREGATOR, real values in AS4_PATH / AS4_AGGREGATOR
    c["as4_path"] = bgp4mp(T + 3, update(attrs=std_attrs([(AS_SEQ, [65001, 23456, 23456])], asn_len=2,
                                                         extra=attr(17, aspath_value([(AS_SEQ, [4200000001, 4200000002])])),
                                                         ), nlri=prefix("198.51.103.0/24")), subtype=1, peer_as=65001)
    c["as4_aggregator"] = bgp4mp(T + 3, update(attrs=std_attrs([(AS_SEQ, [65001, 23456])], asn_len=2, atomic=True,
                                                               agg=(23456, "192.0.2.9"),
                                                               extra=attr(17, aspath_value([(AS_SEQ, [4200000001])])) +
                                                               attr(18, struct.pack("!I", 4200000009) + ipaddress.IPv4Address("192.0.2.9").packed)),
                                               nlri=prefix("198.51.104.0/24")), subtype=1)
    c["as4_path_set"] = bgp4mp(T + 3, update(attrs=std_attrs([(AS_SEQ, [65001, 23456]), (AS_SET, [23456, 65010])], asn_len=2,
                                                             extra=attr(17, aspath_value([(AS_SEQ, [4200000001]), (AS_SET, [4200000002, 65010])]))),
                                             nlri=prefix("198.51.105.0/24")), subtype=1)
    c["origins"] = (bgp4mp(T + 4, update(attrs=std_attrs([(AS_SEQ, [65001])], origin=EGP), nlri=prefix("192.0.2.0/25"))) +
                    bgp4mp(T + 4, update(attrs=std_attrs([(AS_SEQ, [65001])], origin=INCOMPLETE), nlri=prefix("192.0.2.128/25"))) +
                    bgp4mp(T + 4, update(attrs=std_attrs([(AS_SEQ, [65001])], origin=None), nlri=prefix("192.0.3.0/24"))))
    c["aggregator"] = bgp4mp(T + 5, update(attrs=std_attrs([(AS_SEQ, [65001])], atomic=True, agg=(65001, "192.0.2.7")),
                                           nlri=prefix("198.51.106.0/24")))
    c["ipv6"] = bgp4mp(T + 6, update(attrs=std_attrs([(AS_SEQ, [65001, 65002])], nh=None, comms=["65001:6"]) +
                                     v6ll_reach(["2001:db8:1::/48", "2001:db8:2::/48"])), peer="2001:db8::1", local="2001:db8::fe")
    c["ipv6_unreach"] = bgp4mp(T + 6, update(attrs=mp_unreach(2, 1, prefix("2001:db8:1::/48") + prefix("2001:db8:ff::/64"))),
                               peer="2001:db8::1", local="2001:db8::fe")
    c["ipv6_over_v4"] = bgp4mp(T + 6, update(attrs=std_attrs([(AS_SEQ, [65001])], nh=None) +
                                             mp_reach(2, 1, ["2001:db8::1"], prefix("2001:db8:3::/48"))))
    c["mp_ipv4"] = bgp4mp(T + 7, update(attrs=std_attrs([(AS_SEQ, [65001])], nh=None, med=3000000000, lp=4294967295) +
                                        mp_reach(1, 1, ["192.0.2.77"], prefix("198.51.107.0/24"))))
    c["mp_unreach_v4"] = bgp4mp(T + 7, update(attrs=mp_unreach(1, 1, prefix("198.51.107.0/24"))))
    c["end_of_rib_v6"] = bgp4mp(T + 7, update(attrs=mp_unreach(2, 1, b"")))
    c["withdraw_only"] = bgp4mp(T + 8, update(withdrawn=prefix("10.9.0.0/16") + prefix("10.8.0.0/15")))
    c["end_of_rib_v4"] = bgp4mp(T + 8, update())
    c["local"] = bgp4mp(T + 9, update(attrs=std_attrs([(AS_SEQ, [65000])]), nlri=prefix("198.51.108.0/24")), subtype=7,
                        peer_as=65001, local_as=65000)
    c["local_v6"] = bgp4mp(T + 9, update(attrs=mp_unreach(2, 1, prefix("2001:db8:9::/48"))), subtype=7)
    c["addpath"] = bgp4mp(T + 10, update(withdrawn=prefix("10.7.0.0/16", 7),
                                         attrs=std_attrs([(AS_SEQ, [65001])]),
                                         nlri=prefix("198.51.109.0/24", 1) + prefix("198.51.109.0/24", 2)), subtype=9)
    c["addpath_v6"] = bgp4mp(T + 10, update(attrs=std_attrs([(AS_SEQ, [65001])], nh=None) +
                                            v6ll_reach(["2001:db8:5::/48"], addpath=True)), subtype=9, peer="2001:db8::1", local="2001:db8::fe")
    c["addpath_local_2byte"] = bgp4mp(T + 10, update(attrs=std_attrs([(AS_SEQ, [65000])], asn_len=2),
                                                     nlri=prefix("198.51.110.0/24", 5)), subtype=10)
    c["et"] = bgp4mp(T + 11, update(attrs=std_attrs([(AS_SEQ, [65001])]), nlri=prefix("198.51.111.0/24")), et_usec=123456)
    c["et_addpath"] = bgp4mp(T + 11, update(withdrawn=prefix("198.51.111.0/24", 3)), subtype=9, et_usec=7)
    c["state"] = (state_change(T + 12, 1, 2) + state_change(T + 12, 6, 1, as4=False) +
                  state_change(T + 12, 5, 6, peer="2001:db8::1", local="2001:db8::fe") + state_change(T + 12, 2, 3, et_usec=42))
    c["messages"] = (bgp4mp(T + 13, open_msg(65001, "192.0.2.1", addpath=[(1, 1, 3)])) + bgp4mp(T + 13, KEEPALIVE) +
                     bgp4mp(T + 13, notification(6, 2, b"\x08shutdown")) + bgp4mp(T + 13, bgp_msg(5, struct.pack("!HBB", 1, 0, 1))))
    # unknown optional attribute, extended and large communities
    c["unknown_attr"] = bgp4mp(T + 14, update(attrs=std_attrs([(AS_SEQ, [65001])],
                                                              extra=attr(99, b"\xde\xad\xbe\xef", 0xC0) +
                                                              attr(16, bytes([0, 2, 0xfd, 0xe9, 0, 0, 0, 1])) +
                                                              attr(32, struct.pack("!III", 65001, 1, 2))),
                                              nlri=prefix("198.51.112.0/24")))
    # long: an extended message (> 4096 bytes): a 1000-AS path (bgpdump cuts the text) and 1500 prefixes
    long_path = [(AS_SEQ, list(range(4200000000, 4200000255))), (AS_SEQ, list(range(4200001000, 4200001255))),
                 (AS_SEQ, list(range(4200002000, 4200002255))), (AS_SEQ, list(range(4200003000, 4200003235)))]
    nl = b"".join(prefix(f"100.{i // 256}.{i % 256}.0/24") for i in range(1500))
    c["long"] = bgp4mp(T + 15, update(attrs=std_attrs(long_path), nlri=nl))
    # malformed: a bad AS_PATH segment type, then a truncated attribute; the file goes on
    bad_seg = attr(1, b"\x00") + attr(2, b"\x07\x01\x00\x00\xfd\xe9") + attr(3, b"\xc0\x00\x02\x01")
    c["malformed"] = (bgp4mp(T + 16, update(attrs=bad_seg, nlri=prefix("198.51.113.0/24"))) +
                      bgp4mp(T + 16, update(attrs=std_attrs([(AS_SEQ, [65001])]) + b"\x40\x05\x09\x00", nlri=prefix("198.51.114.0/24"))) +
                      bgp4mp(T + 17, update(attrs=std_attrs([(AS_SEQ, [65001])]), nlri=prefix("198.51.115.0/24"))))
    # TABLE_DUMP_V2
    peers = peer_index(T + 20, [("192.0.2.1", "192.0.2.1", 65001, False), ("192.0.2.2", "2001:db8::2", 4200000002, True),
                                ("192.0.2.3", "192.0.2.3", 65003, True)], view=b"bgpi")
    a1 = std_attrs([(AS_SEQ, [65001, 65010])], med=5, comms=["65001:1"])
    a2 = std_attrs([(AS_SEQ, [4200000002]), (AS_SET, [65020, 65021])], nh="192.0.2.2", lp=100)
    abbrev = attr(1, b"\x00") + attr(2, aspath_value([(AS_SEQ, [4200000002, 65030])])) + \
        attr(14, bytes([32]) + ipaddress.ip_address("2001:db8::2").packed + ipaddress.ip_address("fe80::2").packed)
    c["table_dump_v2"] = (peers + rib(T + 20, 2, 0, "198.51.100.0/24", [(0, T - 100, a1), (1, T - 50, a2)]) +
                          rib(T + 20, 4, 1, "2001:db8:10::/48", [(1, T - 10, abbrev)]) +
                          rib(T + 20, 3, 2, "198.51.120.0/24", [(0, T, a1)]) +
                          rib(T + 20, 8, 3, "198.51.121.0/24", [(0, T, a1, 1), (2, T, a2, 2)]) +
                          rib(T + 20, 10, 4, "2001:db8:11::/48", [(1, T, abbrev, 9)]) +
                          rib(T + 20, 2, 5, "0.0.0.0/0", [(2, T, a2)]))
    c["table_dump"] = (table_dump(T + 30, "198.51.100.0/24", "192.0.2.1", 65001, std_attrs([(AS_SEQ, [65001])], asn_len=2)) +
                       table_dump(T + 30, "2001:db8::/32", "2001:db8::1", 65001,
                                  attr(1, b"\x02") + attr(2, aspath_value([(AS_SEQ, [65001, 65005])], 2)) +
                                  attr(14, bytes([16]) + ipaddress.ip_address("2001:db8::1").packed)))
    # a record of a type that is not BGP (OSPFv2) between two BGP records
    c["other_type"] = mrt(T + 40, 11, 0, b"\x00" * 8) + c["basic"]
    return c


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---- benchmark data ------------------------------------------------------------------------------
def bench(out, n):
    rnd = random.Random(5)
    T = 1700000000
    with open(out, "wb") as f:
        chunk = []
        for i in range(n):
            pa = 65000 + (i % 50)
            path = [(AS_SEQ, [pa] + [rnd.randrange(1, 400000) for _ in range(rnd.randrange(1, 6))])]
            if i % 10 == 0:
                msg = update(withdrawn=prefix(f"{10 + i % 200}.{(i >> 8) % 256}.{i % 256}.0/24"))
            else:
                nl = b"".join(prefix(f"{(i * 7 + k) % 223 + 1}.{(i >> 4) % 256}.{(i + k) % 256}.0/24") for k in range(1 + i % 3))
                msg = update(attrs=std_attrs(path, med=i % 7 if i % 2 else None, lp=100,
                                             comms=[f"{pa}:{i % 1000}"] if i % 3 == 0 else None), nlri=nl)
            chunk.append(bgp4mp(T + i // 1000, msg, peer_as=pa, peer=f"192.0.2.{1 + i % 50}"))
            if len(chunk) >= 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


# ---- pcap ----------------------------------------------------------------------------------------
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_packet(src, dst, sport, dport, seq, ack, flags, payload):
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0) + payload
    c = csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return eth + ip + tcp


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.t = 1700000000.0

    def pkt(self, data):
        self.t += 0.001
        sec = int(self.t)
        usec = int(round((self.t - sec) * 1e6))
        self.f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)


class Tcp:
    """One TCP connection; send() splits data into segments of at most mss bytes."""

    def __init__(self, pc, a, b, ap, bp, mss=1000):
        self.pc, self.a, self.b, self.ap, self.bp, self.mss = pc, a, b, ap, bp, mss
        self.seq = {0: 1000, 1: 500000}
        pc.pkt(tcp_packet(a, b, ap, bp, self.seq[0], 0, 0x02, b""))
        pc.pkt(tcp_packet(b, a, bp, ap, self.seq[1], self.seq[0] + 1, 0x12, b""))
        self.seq[0] += 1
        self.seq[1] += 1
        pc.pkt(tcp_packet(a, b, ap, bp, self.seq[0], self.seq[1], 0x10, b""))

    def segments(self, side, data):
        out = []
        for i in range(0, len(data), self.mss):
            out.append((self.seq[side], data[i:i + self.mss]))
            self.seq[side] += len(data[i:i + self.mss])
        return out

    def emit(self, side, segs):
        src, dst, sp, dp = (self.a, self.b, self.ap, self.bp) if side == 0 else (self.b, self.a, self.bp, self.ap)
        for seq, p in segs:
            self.pc.pkt(tcp_packet(src, dst, sp, dp, seq, self.seq[1 - side], 0x18, p))

    def send(self, side, data):
        self.emit(side, self.segments(side, data))


def pcap(out):
    pc = Pcap(out)
    # session 1: 4-octet AS, messages split across segments, a retransmission and reordering
    t = Tcp(pc, "127.0.0.2", "127.0.0.1", 40001, 179, mss=100)
    t.send(0, open_msg(65001, "127.0.0.2"))
    t.send(1, open_msg(65000, "127.0.0.1"))
    t.send(0, KEEPALIVE)
    t.send(1, KEEPALIVE)
    u1 = update(attrs=std_attrs([(AS_SEQ, [65001, 4200000005])], comms=["65001:1"]), nlri=prefix("198.51.100.0/24") + prefix("198.51.101.0/24"))
    u2 = update(withdrawn=prefix("198.51.101.0/24"))
    u3 = update(attrs=std_attrs([(AS_SEQ, [65001]), (AS_SET, [65002, 65003])], origin=INCOMPLETE), nlri=prefix("203.0.113.0/24"))
    t.mss = 40
    segs = t.segments(0, u1 + u2 + u3)
    # send segment 0, then 2 and 1 swapped, then segment 1 again (retransmission), then the rest
    order = [segs[0], segs[2], segs[1], segs[1]] + segs[3:]
    t.emit(0, order)
    t.send(1, update(attrs=std_attrs([(AS_SEQ, [65000])], nh="127.0.0.1"), nlri=prefix("192.0.2.0/24")))
    # session 2: a 2-octet speaker (AS_TRANS + AS4_PATH) with ADD-PATH on IPv4 unicast
    t2 = Tcp(pc, "127.0.0.3", "127.0.0.1", 40002, 1790, mss=1460)
    t2.send(0, open_msg(65003, "127.0.0.3", as4=False, addpath=[(1, 1, 3)]))
    t2.send(1, open_msg(65000, "127.0.0.1", as4=False, addpath=[(1, 1, 3)]))
    t2.send(0, update(attrs=std_attrs([(AS_SEQ, [65003, 23456])], asn_len=2, extra=attr(17, aspath_value([(AS_SEQ, [65003, 4200000007])]))),
                      nlri=prefix("198.51.102.0/24", 1) + prefix("198.51.102.0/24", 2)))
    t2.send(0, notification(6, 2))
    pc.f.close()


def bench_pcap(out, n, packed=True):
    """One session carrying n UPDATEs: packed into full 1400-byte segments (a table
    transfer), or one UPDATE per segment (steady-state churn)."""
    pc = Pcap(out)
    t = Tcp(pc, "127.0.0.2", "127.0.0.1", 40001, 179, mss=1400)
    t.send(0, open_msg(65001, "127.0.0.2"))
    t.send(1, open_msg(65000, "127.0.0.1"))
    rnd = random.Random(7)
    buf = b""
    for i in range(n):
        path = [(AS_SEQ, [65001] + [rnd.randrange(1, 400000) for _ in range(rnd.randrange(1, 5))])]
        buf += update(attrs=std_attrs(path, lp=100), nlri=prefix(f"{(i * 7) % 223 + 1}.{(i >> 8) % 256}.{i % 256}.0/24"))
        if not packed:
            t.send(0, buf)
            buf = b""
        elif len(buf) > 1400:
            t.send(0, buf[:1400])
            buf = buf[1400:]
    if buf:
        t.send(0, buf)
    pc.f.close()


def pool_pcap(out, n=12000):
    """Two sessions interleaved (4-octet and 2-octet AS), n UPDATEs, with what changes a -m
    line or warns well after the first 4096 messages (where decode -m starts its threads):
    a new OPEN with another AS, reordered and retransmitted segments, messages split
    across segments, malformed attributes, garbage inside a stream."""
    pc = Pcap(out)
    a = Tcp(pc, "127.0.0.2", "127.0.0.1", 40001, 179, mss=700)
    b = Tcp(pc, "127.0.0.3", "127.0.0.1", 40002, 179, mss=1400)
    a.send(0, open_msg(65001, "127.0.0.2"))
    a.send(1, open_msg(65000, "127.0.0.1"))
    b.send(0, open_msg(65002, "127.0.0.3", as4=False))
    b.send(1, open_msg(65000, "127.0.0.1", as4=False))
    rnd = random.Random(11)
    pending = {0: b"", 1: b""}
    first_as = {0: 65001, 1: 65002}
    for i in range(n):
        k = 0 if rnd.random() < 0.6 else 1
        t = (a, b)[k]
        path = [(AS_SEQ, [first_as[k]] + [rnd.randrange(1, 65000) for _ in range(rnd.randrange(1, 4))])]
        extra = b""
        if i in (9001, 9502, 11003):
            extra = attr(4, b"\x00\x00\x01")  # MED of length 3: a warning, the rest still shown
        msg = update(attrs=std_attrs(path, asn_len=4 if k == 0 else 2, lp=100, med=None if extra else i % 5, extra=extra),
                     nlri=prefix(f"{i % 200 + 1}.{(i >> 8) % 256}.{i % 256}.0/24"))
        pending[k] += msg
        if i == 10000:
            pending[1] += b"\x00" * 37  # not a message: skipped to the next marker, with a warning
        if i == 10500:
            pending[0] += open_msg(65011, "127.0.0.2")  # the peer comes back as another AS
            first_as[0] = 65011
        if len(pending[k]) > rnd.randrange(100, 3000):
            segs = t.segments(0, pending[k])
            pending[k] = b""
            if i in (9800, 10900) and len(segs) >= 3:
                segs = [segs[1], segs[0]] + segs[1:]  # reordered, and one retransmitted
            t.emit(0, segs)
    for k, t in ((0, a), (1, b)):
        if pending[k]:
            t.send(0, pending[k])
    pc.f.close()


def main():
    cmd = sys.argv[1]
    if cmd == "edge":
        d = sys.argv[2]
        os.makedirs(d, exist_ok=True)
        cases = edge_cases()
        for k, v in cases.items():
            write(os.path.join(d, k + ".mrt"), v)
        write(os.path.join(d, "all.mrt"), b"".join(v for k, v in cases.items() if k != "other_type"))
    elif cmd == "bad":
        d = sys.argv[2]
        os.makedirs(d, exist_ok=True)
        cases = edge_cases()
        good = cases["basic"] + cases["as_set"] + cases["ipv6"]
        write(os.path.join(d, "truncated.mrt"), good + cases["confed"][:-7])
        write(os.path.join(d, "truncated_header.mrt"), good + cases["confed"][:5])
        write(os.path.join(d, "garbage.mrt"), b"this is not an MRT file at all, just some text\n" * 3)
        write(os.path.join(d, "badlen.mrt"), good + struct.pack("!IHHI", 1700000000, 16, 4, 0x7FFFFFFF) + b"x" * 20)
        write(os.path.join(d, "empty.mrt"), b"")
    elif cmd == "bench":
        bench(sys.argv[2], int(sys.argv[3]))
    elif cmd == "pcap":
        pcap(sys.argv[2])
    elif cmd == "bench-pcap":
        bench_pcap(sys.argv[2], int(sys.argv[3]), len(sys.argv) < 5 or sys.argv[4] != "single")
    elif cmd == "pool-pcap":
        pool_pcap(sys.argv[2])
    else:
        sys.exit("usage: bgpi_mrt.py edge|bad|bench|pcap|bench-pcap|pool-pcap ...")


if __name__ == "__main__":
    main()
