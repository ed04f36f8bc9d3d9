#!/usr/bin/env python3
"""One measurement of bench/routes: kernel route change -> the worker forwarding with it.

A UDP stream (one datagram every --interval-us, sequence number and send time inside)
runs from pod --src-ns to --dst:--port in pod --dst-ns the whole time. At T0 the route
--prefix via --gw dev --dev is added to table --table in node --node-ns, by one
RTM_NEWROUTE sent from here (the kernel applies it, and notifies, inside that sendmsg);
T1 is the kernel receive timestamp (SO_TIMESTAMPNS) of the first datagram the
destination pod gets. At T2 the route is deleted again; T3 is the send time of the first
datagram after which nothing arrives (the worker drops it as no_route). Prints one JSON
line: learn_ms = T1 - T0, withdraw_ms = T3 - T2, the datagram counts, and run_s (longer
than 0.5 + 2 x --settle when this process was starved of CPU).

All sockets are made here, each in its namespace (setns(2) on this thread, then back),
so one process and one clock (CLOCK_REALTIME) time everything.
"""
import argparse
import ctypes
import json
import os
import socket
import struct
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL = 0x1, 0x4, 0x400, 0x200
NLMSG_ERROR = 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RTPROT_BIRD, RTN_UNICAST, RT_TABLE_COMPAT = 12, 1, 252
PAYLOAD = struct.Struct("=QQ")  # sequence number, send time (ns, CLOCK_REALTIME)

libc = ctypes.CDLL("libc.so.6", use_errno=True)


HOME_NS = os.open("/proc/thread-self/ns/net", os.O_RDONLY)


def enter(ns):
    """Move this thread into network namespace `ns` (a name under /run/netns; None: back
    to the one it started in)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY) if ns else os.dup(HOME_NS)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            sys.exit(f"setns {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def rta(kind, data):
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n % 4)


def route_msg(op, flags, seq, prefix, gw, oif, table):
    net, plen = prefix.split("/")
    rtm = struct.pack("=BBBBBBBBI", socket.AF_INET, int(plen), 0, 0,
                      table if table < 256 else RT_TABLE_COMPAT, RTPROT_BIRD, 0, RTN_UNICAST, 0)
    attrs = (rta(RTA_DST, socket.inet_aton(net)) + rta(RTA_GATEWAY, socket.inet_aton(gw))
             + rta(RTA_OIF, struct.pack("=I", oif)) + rta(RTA_TABLE, struct.pack("=I", table)))
    body = rtm + attrs
    return struct.pack("=IHHII", 16 + len(body), op, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body


def change_route(nl, op, seq, a):
    """Send one route change; returns the time just before the send. Exits on a refusal."""
    flags = NLM_F_CREATE | NLM_F_EXCL if op == RTM_NEWROUTE else 0
    msg = route_msg(op, flags, seq, a.prefix, a.gw, a.oif, a.table)
    t = time.time_ns()
    nl.send(msg)
    reply = nl.recv(65536)
    _, kind, _, rseq, _ = struct.unpack_from("=IHHII", reply)
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, 16)
        if code != 0:
            sys.exit(f"route {'add' if op == RTM_NEWROUTE else 'del'} {a.prefix}: {os.strerror(-code)}")
    return t


def receive(sock, got, stop):
    while not stop.is_set():
        try:
            data, anc, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(16))
        except socket.timeout:
            continue
        rx = None
        for level, kind, c in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                s, ns = struct.unpack("=qq", c[:16])
                rx = s * 1_000_000_000 + ns
        if len(data) >= PAYLOAD.size and rx is not None:
            seq, tx = PAYLOAD.unpack_from(data)
            got.append((seq, tx, rx))


def send(sock, dst, interval_ns, sent, stop):
    seq = 0
    next_t = time.monotonic_ns()
    while not stop.is_set():
        tx = time.time_ns()
        try:
            sock.sendto(PAYLOAD.pack(seq, tx), dst)
        except OSError:
            pass  # no route on the pod's side cannot happen (default route); keep going
        sent.append((seq, tx))
        seq += 1
        next_t += interval_ns
        delay = next_t - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node-ns", required=True)
    p.add_argument("--src-ns", required=True)
    p.add_argument("--dst-ns", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, default=5599)
    p.add_argument("--prefix", required=True)
    p.add_argument("--gw", required=True)
    p.add_argument("--dev", default="eth0")
    p.add_argument("--table", type=int, default=201)
    p.add_argument("--interval-us", type=int, default=500)
    p.add_argument("--settle", type=float, default=1.5, help="seconds after each change")
    a = p.parse_args()

    enter(a.dst_ns)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind((a.dst, a.port))
    rx.settimeout(0.1)
    enter(a.src_ns)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    enter(a.node_ns)
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    nl.bind((0, 0))
    a.oif = socket.if_nametoindex(a.dev)
    enter(None)

    got, sent, stop = [], [], threading.Event()
    threads = [threading.Thread(target=receive, args=(rx, got, stop)),
               threading.Thread(target=send, args=(tx, (a.dst, a.port), a.interval_us * 1000, sent, stop))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    before = len(got)  # must be 0: no route yet
    t0 = change_route(nl, RTM_NEWROUTE, 1, a)
    time.sleep(a.settle)
    t2 = change_route(nl, RTM_DELROUTE, 2, a)
    time.sleep(a.settle)
    stop.set()
    for t in threads:
        t.join()

    learned = min((g[2] for g in got if g[2] >= t0), default=None)
    seqs = {g[0] for g in got}
    first_seq, last_seq = min(seqs, default=None), max(seqs, default=None)
    # The first datagram after the last one delivered: dropped as no_route.
    first_dropped = next((s for s in sent if last_seq is not None and s[0] == last_seq + 1), None)
    routed = [s for s in sent if first_seq is not None and first_seq <= s[0] <= last_seq]
    out = {
        "before_route": before,
        "sent": len(sent),
        "delivered": len(got),
        # Sent while podfwd had no route (before the first delivered, after the last):
        # each should be one no_route on node a.
        "unrouted": len(sent) - len(routed),
        # Sent while it had one and not delivered (lost on the way: not podfwd's route).
        "lost_routed": len(routed) - len(seqs),
        "learn_ms": None if learned is None else (learned - t0) / 1e6,
        "withdraw_ms": None if first_dropped is None or first_dropped[1] < t2 else (first_dropped[1] - t2) / 1e6,
        "interval_us": a.interval_us,
        "run_s": (time.time_ns() - t0) / 1e9 + 0.5,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
