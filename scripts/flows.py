#!/usr/bin/env python3
"""Many small TCP and UDP flows from fixed source ports, for the multipath test.

  flows.py serve --port P                 # TCP: accept, read each connection to EOF
  flows.py send --dst IP --port P --sport S --flows N [--frames K]

`send` opens N TCP connections to IP:P from source ports S, S+1, ... (each writes K
small segments, one at a time, then closes) and sends K UDP datagrams from each of the
source ports S+N, S+N+1, ... to IP:P (nothing needs to listen). Fixed ports make the
flows, and so which next hop each one takes, the same on every run. Prints one JSON
object: {"tcp": [source ports that connected], "udp": [source ports that sent]}.
`serve` prints "listening" once it accepts.
"""
import argparse
import json
import socket
import sys
import threading
import time


def serve(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    print("listening", flush=True)

    def drain(conn):
        with conn:
            while conn.recv(65536):
                pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def tcp_flow(dst, port, sport, frames):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    s.bind(("0.0.0.0", sport))
    try:
        s.connect((dst, port))
        for i in range(frames):
            s.sendall(b"%d flow %d segment %d\n" % (sport, sport, i))
            time.sleep(0.005)  # one segment each, not coalesced
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # the server's FIN
        return True
    except OSError as e:
        print(f"tcp from port {sport}: {e}", file=sys.stderr)
        return False
    finally:
        s.close()


def udp_flow(dst, port, sport, frames):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    for i in range(frames):
        s.sendto(b"%d datagram %d\n" % (sport, i), (dst, port))
        time.sleep(0.002)
    s.close()
    return True


def send(dst, port, sport, flows, frames):
    tcp = [p for p in range(sport, sport + flows) if tcp_flow(dst, port, p, frames)]
    udp = [
        p
        for p in range(sport + flows, sport + 2 * flows)
        if udp_flow(dst, port, p, frames)
    ]
    print(json.dumps({"tcp": tcp, "udp": udp}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, required=True)
    sd = sub.add_parser("send")
    sd.add_argument("--dst", required=True)
    sd.add_argument("--port", type=int, required=True)
    sd.add_argument("--sport", type=int, required=True)
    sd.add_argument("--flows", type=int, required=True)
    sd.add_argument("--frames", type=int, default=10)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a.port)
    else:
        send(a.dst, a.port, a.sport, a.flows, a.frames)


if __name__ == "__main__":
    main()
