#!/usr/bin/env python3
"""Send malformed and hostile frames at podfwd, for the reliability tests and the soak.

Frames are built byte by byte with `struct` and sent through a raw AF_PACKET socket
bound to one interface, so nothing in the sender's kernel fixes them up.

  inject.py pod      --iface eth0 --dst-mac MAC --src-ip POD_IP --remote-ip REMOTE_POD [-n N]
  inject.py underlay --iface ub   --dst-mac MAC --src-ip NODE_A_IP --dst-ip NODE_B_IP \
                     --pod-ip LOCAL_POD --foreign-pod POD_ON_A [--vni 1] [--port 8472] [-n N]
  inject.py list pod|underlay     # kinds and the counter each must land in, as JSON

`pod` runs inside a pod namespace (frames arrive on its host-side lxc veth);
`underlay` runs in the switch namespace on the port toward the receiving node (tunnel
mode). Each kind is sent N times. The expected outcome of each kind is part of the table
below (and of docs/reliability.md):

  drop:REASON    podfwd takes the frame and drops it: `drops.REASON` grows by N
  xdp:STAT       the XDP program passes it to the kernel: `steering.STAT` grows by N
  action:NAME    podfwd answers it: `actions.NAME` grows by N

Prints one JSON object: {"kind": {"sent": N, "expect": "..."}, ...}; kinds that the
interface's MTU cannot carry are left out (with a note on stderr).
"""
import argparse
import json
import socket
import struct
import sys

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_IP6 = 0x86DD
ETH_VLAN = 0x8100
UDP = 17


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip4(s):
    return socket.inet_aton(s)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, etype, payload, vlan=None):
    hdr = dst + src
    if vlan is not None:
        hdr += struct.pack("!HH", ETH_VLAN, vlan)
    return hdr + struct.pack("!H", etype) + payload


def ipv4(src, dst, payload, proto=UDP, ttl=64, options=b"", df=False, mf=False, frag_off=0,
         total=None, version=4, ihl=None, bad_csum=False):
    if ihl is None:
        ihl = 5 + len(options) // 4
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag_off
    tl = total if total is not None else 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tl, 0x1234, flags, ttl, proto, 0,
                      ip4(src), ip4(dst)) + options
    c = csum(hdr)
    if bad_csum:
        c ^= 0x5555
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return hdr + payload


def udp(sport, dport, payload, length=None):
    # Checksum 0: "none" for UDP over IPv4, valid for the receiver.
    ln = length if length is not None else 8 + len(payload)
    return struct.pack("!HHHH", sport, dport, ln, 0) + payload


def vxlan(vni, payload, flags=0x08):
    return struct.pack("!B3sI", flags, b"\0\0\0", vni << 8) + payload


def pod_kinds(a):
    """Frames a pod sends toward its host-side veth (arriving on lxcN)."""
    d, s = mac(a.dst_mac), mac(a.src_mac)
    src, rem = a.src_ip, a.remote_ip
    body = udp(40000, 9, b"podfwd-inject-" + b"x" * 18)

    def e(p, **kw):
        return eth(d, s, ETH_IP, p, **kw)

    big = udp(40000, 9, b"y" * (1480 - 28))
    return [
        ("eth_header_only", eth(d, s, ETH_IP, b""), "xdp:passed_malformed"),
        ("ipv4_truncated", e(ipv4(src, rem, body)[:12]), "xdp:passed_malformed"),
        ("ipv6", eth(d, s, ETH_IP6, b"\x60" + b"\0" * 39), "xdp:passed_not_ipv4"),
        ("multicast_ip", e(ipv4(src, "224.0.0.251", body)), "xdp:passed_not_cluster"),
        ("bad_version", e(ipv4(src, rem, body, version=6)), "drop:malformed_ipv4"),
        ("bad_ihl", e(ipv4(src, rem, body, ihl=4)), "drop:malformed_ipv4"),
        ("ihl_beyond_frame", e(ipv4(src, rem, b"", ihl=15)), "drop:malformed_ipv4"),
        ("total_len_too_long", e(ipv4(src, rem, body, total=1000)), "drop:malformed_ipv4"),
        ("total_len_too_short", e(ipv4(src, rem, body, total=12)), "drop:malformed_ipv4"),
        ("bad_checksum", e(ipv4(src, rem, body, bad_csum=True)), "drop:malformed_ipv4"),
        ("ip_options", e(ipv4(src, rem, body, options=b"\x01\x01\x01\x00")), "drop:ip_options"),
        ("fragment_first", e(ipv4(src, rem, body, mf=True)), "drop:fragment"),
        ("fragment_later", e(ipv4(src, rem, body, frag_off=100)), "drop:fragment"),
        ("ttl_0", e(ipv4(src, rem, body, ttl=0)), "drop:ttl_expired"),
        ("ttl_1", e(ipv4(src, rem, body, ttl=1)), "drop:ttl_expired"),
        ("vlan_tagged", e(ipv4(src, rem, body), vlan=100), "drop:vlan_tagged"),
        ("broadcast_mac", eth(b"\xff" * 6, s, ETH_IP, ipv4(src, rem, body)), "drop:broadcast_multicast"),
        ("multicast_mac", eth(mac("01:00:5e:00:00:fb"), s, ETH_IP, ipv4(src, rem, body)),
         "drop:broadcast_multicast"),
        ("spoofed_source", e(ipv4("10.0.1.99" if src != "10.0.1.99" else "10.0.1.98", rem, body)),
         "drop:martian_source"),
        ("no_route", e(ipv4(src, "10.0.99.9", body)), "drop:no_route"),
        ("to_itself", e(ipv4(src, src, body)), "drop:hairpin"),
        # Tunnel mode: uplink MTU 1500 - 50 = 1450 < 1480 (needs the pod's MTU at 1500).
        ("too_big_no_df", e(ipv4(src, rem, big)), "drop:frame_too_big"),
        ("too_big_df", e(ipv4(src, rem, big, df=True)), "action:icmp_frag_needed"),
    ]


def underlay_kinds(a):
    """Frames on the underlay toward a tunnel-mode node."""
    d, s = mac(a.dst_mac), mac(a.src_mac)
    osrc, odst, pod, foreign = a.src_ip, a.dst_ip, a.pod_ip, a.foreign_pod
    imac_d, imac_s = mac("02:00:00:00:00:01"), mac("02:00:00:00:00:02")
    body = udp(40000, 9, b"podfwd-inject-" + b"x" * 18)

    def inner(dst=pod, **kw):
        return eth(imac_d, imac_s, ETH_IP, ipv4("10.0.1.2", dst, body, **kw))

    def vx(payload, vni=a.vni, port=a.port, flags=0x08, **ipkw):
        return eth(d, s, ETH_IP, ipv4(osrc, odst, udp(50000, port, vxlan(vni, payload, flags)), **ipkw))

    ok = inner()
    arp = struct.pack("!HHBBH6s4s6s4s", 1, ETH_IP, 6, 4, 1, imac_s, ip4("10.0.1.2"), b"\0" * 6, ip4(pod))
    # Outer IPv4 1504 bytes (frame 1518: the most a veth accepts at MTU 1500), inner 1454.
    big_inner = eth(imac_d, imac_s, ETH_IP, ipv4("10.0.1.2", pod, udp(40000, 9, b"z" * (1454 - 28))))
    return [
        ("ul_eth_header_only", eth(d, s, ETH_IP, b""), "xdp:passed_malformed"),
        ("ul_ipv4_truncated", eth(d, s, ETH_IP, ipv4(osrc, odst, b"")[:12]), "xdp:passed_malformed"),
        ("ul_bad_ihl", vx(ok, ihl=4), "xdp:passed_malformed"),
        ("ul_udp_truncated", eth(d, s, ETH_IP, ipv4(osrc, odst, b"\x1f\x90")), "xdp:passed_malformed"),
        ("ul_vlan_tagged", eth(d, s, ETH_IP, ipv4(osrc, odst, udp(50000, a.port, vxlan(a.vni, ok))), vlan=100),
         "xdp:passed_not_ipv4"),
        ("ul_wrong_port", vx(ok, port=4789), "xdp:passed_not_ours"),
        ("ul_fragment", vx(ok, mf=True), "xdp:passed_not_ours"),
        ("ul_total_len_too_long", vx(ok, total=1400), "drop:malformed_ipv4"),
        ("ul_bad_checksum", vx(ok, bad_csum=True), "drop:malformed_ipv4"),
        ("ul_udp_len_too_long", eth(d, s, ETH_IP, ipv4(osrc, odst, udp(50000, a.port, vxlan(a.vni, ok), length=900))),
         "drop:bad_vxlan"),
        ("ul_vxlan_truncated", eth(d, s, ETH_IP, ipv4(osrc, odst, udp(50000, a.port, b"\x08\0\0\0"))),
         "drop:bad_vxlan"),
        ("ul_vxlan_no_i_flag", vx(ok, flags=0x00), "drop:bad_vxlan"),
        ("ul_wrong_vni", vx(ok, vni=a.vni + 98), "drop:wrong_vni"),
        ("ul_inner_too_short", vx(ok[:30]), "drop:inner_too_short"),
        ("ul_inner_vlan", vx(eth(imac_d, imac_s, ETH_IP, ipv4("10.0.1.2", pod, body), vlan=7)), "drop:vlan_tagged"),
        ("ul_inner_arp", vx(eth(imac_d, imac_s, ETH_ARP, arp)), "drop:not_ipv4"),
        ("ul_inner_bad_checksum", vx(inner(bad_csum=True)), "drop:malformed_ipv4"),
        ("ul_inner_ttl_0", vx(inner(ttl=0)), "drop:ttl_expired"),
        ("ul_inner_ttl_1", vx(inner(ttl=1)), "drop:ttl_expired"),
        ("ul_inner_broadcast", vx(inner(dst="255.255.255.255")), "drop:broadcast_multicast"),
        ("ul_inner_other_node", vx(inner(dst=foreign)), "drop:hairpin"),
        ("ul_inner_no_route", vx(inner(dst="10.0.99.9")), "drop:no_route"),
        # Needs the receiving pod's host veth at MTU 1450 (as a CNI sets it in tunnel mode).
        ("ul_inner_too_big", vx(big_inner), "drop:frame_too_big"),
    ]


DEFAULTS = dict(dst_mac="02:00:00:00:00:ff", src_mac="02:00:00:00:00:fe", src_ip="10.0.1.3",
                remote_ip="10.0.2.2", dst_ip="198.18.0.2", pod_ip="10.0.2.2",
                foreign_pod="10.0.1.2", vni=1, port=8472)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("side", choices=["pod", "underlay", "list"])
    p.add_argument("list_side", nargs="?", choices=["pod", "underlay"])
    p.add_argument("--iface")
    p.add_argument("--dst-mac")
    p.add_argument("--src-mac", help="default: the interface's own MAC")
    p.add_argument("--src-ip")
    p.add_argument("--remote-ip")
    p.add_argument("--dst-ip")
    p.add_argument("--pod-ip")
    p.add_argument("--foreign-pod")
    p.add_argument("--vni", type=int)
    p.add_argument("--port", type=int)
    p.add_argument("--kinds", help="comma-separated subset of kinds")
    p.add_argument("-n", "--count", type=int, default=10)
    a = p.parse_args()
    for k, v in DEFAULTS.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.side == "list":
        side = a.list_side or "pod"
        kinds = pod_kinds(a) if side == "pod" else underlay_kinds(a)
        print(json.dumps({k: e for k, _, e in kinds}, indent=1))
        return 0
    if not a.iface:
        p.error("--iface is required")
    if a.src_mac == DEFAULTS["src_mac"]:
        with open("/sys/class/net/%s/address" % a.iface) as f:
            a.src_mac = f.read().strip()
    with open("/sys/class/net/%s/mtu" % a.iface) as f:
        mtu = int(f.read())
    kinds = pod_kinds(a) if a.side == "pod" else underlay_kinds(a)
    if a.kinds:
        want = set(a.kinds.split(","))
        unknown = want - {k for k, _, _ in kinds}
        if unknown:
            p.error("unknown kinds: %s" % ",".join(sorted(unknown)))
        kinds = [k for k in kinds if k[0] in want]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((a.iface, 0))
    out = {}
    for name, frame, expect in kinds:
        if len(frame) > mtu + 14:
            print("inject: %s skipped: %d-byte frame > MTU %d of %s" % (name, len(frame), mtu, a.iface),
                  file=sys.stderr)
            continue
        for _ in range(a.count):
            sock.send(frame)
        out[name] = {"sent": a.count, "expect": expect}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
