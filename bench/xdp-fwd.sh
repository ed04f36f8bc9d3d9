# The xdp-fwd reference row of bench/compare: the kernel's own XDP forwarding
# (xdp-prog/xdp_fwd.bpf.c, shaped like the kernel's samples/bpf/xdp_fwd) on the bed's
# veths, with the kernel's native routes in place. Sourced by bench/compare, not run;
# uses its PF, OUT and log/die.
#
# Where it attaches (native XDP): every node's uplink eth0 and its pods' host-side lxcN.
# A frame can be redirected into a veth only while the veth's peer has GRO on or an XDP
# program (drivers/net/veth.c veth_set_xdp_features(): NETDEV_XDP_ACT_NDO_XMIT; the peer
# receives it in its NAPI), else the redirect fails and the frame is dropped. So GRO goes
# on for the pods' eth0 and the switch's ports uN while the row runs, and back off (the
# veth default) afterwards.
# A redirected frame carries no checksum state: a CHECKSUM_PARTIAL skb turned into an
# XDP frame arrives with its checksum unfinished (TcpInCsumErrors at the receiver). So
# the pods run with tx checksum offload off (bench/compare: topology offloads off), and
# so do the switch's ports: their GRO merges segments that the bridge's egress port must
# cut again (the next node's XDP program takes no GSO frames), and with tx checksum off
# that segmentation writes full checksums.
# shellcheck shell=bash

XDP_FWD_PIN="/sys/fs/bpf/${PF}-xdp-fwd"
# bpf_fib_lookup() outcomes (its return codes 0..9), then the program's own reasons.
XDP_FWD_LABELS="redirected blackhole unreachable prohibit local fwd_disabled unsupp_lwt no_neigh frag_needed no_src_addr not_ipv4 ttl_expired not_tx_port lookup_error"

# bpftool with the node's network namespace but this mount namespace (ip netns exec
# remounts /sys, which hides the pins in /sys/fs/bpf).
xdp_fwd_nsenter() { local n="$1"; shift; nsenter --net="/run/netns/$PF-$n" "$@"; }

xdp_fwd_le32() { printf '%d %d %d %d' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

# The interfaces of node $1 that get the program: its uplink and its pods' host sides.
xdp_fwd_ifaces() {
    ip -n "$PF-$1" -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E '^(eth0|lxc[0-9]+)$'
}

# The pods' namespaces (their eth0 receives redirected frames).
xdp_fwd_pods() { ip netns list | awk '{print $1}' | grep -E "^${PF}-[ab][0-9]+$" || true; }

xdp_fwd_offloads() { # on (the row's) | off (the veth defaults)
    local ns n gro="$1" tx=off
    [ "$1" = on ] || tx=on
    for ns in $(xdp_fwd_pods); do ip netns exec "$ns" ethtool -K eth0 gro "$gro" >/dev/null; done
    for n in a b; do ip netns exec "$PF-u" ethtool -K "u$n" gro "$gro" tx "$tx" >/dev/null; done
}

# Sum of every counter over CPUs and nodes, one "label count" line each.
xdp_fwd_counters() {
    local n
    for n in a b; do
        [ -e "$XDP_FWD_PIN/$n/counters" ] && bpftool -j map dump pinned "$XDP_FWD_PIN/$n/counters"
    done | python3 -c '
import json, sys
labels = sys.argv[1].split()
total = [0] * len(labels)
for line in sys.stdin:
    for e in json.loads(line):
        f = e.get("formatted", e)
        total[int(f["key"])] += sum(int(v["value"]) for v in f["values"])
for l, c in zip(labels, total):
    print(l, c)
' "$XDP_FWD_LABELS"
}

xdp_fwd_redirected() { xdp_fwd_counters | awk '$1 == "redirected" {print $2}'; }

xdp_fwd_up() {
    local obj="$OUT/xdp_fwd.bpf.o" n dev idx
    clang -O2 -g -Wall -Werror -target bpf -I"/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)" \
        -c "$PODFWD_ROOT/xdp-prog/xdp_fwd.bpf.c" -o "$obj" || die "xdp-fwd: building xdp-prog/xdp_fwd.bpf.c failed"
    xdp_fwd_offloads on
    for n in a b; do
        mkdir -p "$XDP_FWD_PIN/$n"
        bpftool prog load "$obj" "$XDP_FWD_PIN/$n/prog" type xdp pinmaps "$XDP_FWD_PIN/$n" \
            || die "xdp-fwd: loading $obj failed"
        for dev in $(xdp_fwd_ifaces "$n"); do
            idx=$(ip netns exec "$PF-$n" cat "/sys/class/net/$dev/ifindex")
            xdp_fwd_nsenter "$n" bpftool map update pinned "$XDP_FWD_PIN/$n/tx_ports" \
                key $(xdp_fwd_le32 "$idx") value $(xdp_fwd_le32 "$idx")
            xdp_fwd_nsenter "$n" bpftool net attach xdpdrv pinned "$XDP_FWD_PIN/$n/prog" dev "$dev" \
                || die "xdp-fwd: attaching native XDP to $dev on node $n failed"
        done
    done
    # Prove the pod-to-pod path runs through the program: after a warm-up (neighbours),
    # each of 5 echo round trips is redirected 4 times (a:lxc0, b:eth0, b:lxc0, a:eth0).
    ip netns exec "$PF-a0" ping -c 2 -i 0.2 -W 1 10.0.2.2 >/dev/null || die "xdp-fwd: a0 cannot reach b0"
    local r0 r1
    r0=$(xdp_fwd_redirected)
    ip netns exec "$PF-a0" ping -c 5 -i 0.1 -W 1 10.0.2.2 >/dev/null || die "xdp-fwd: a0 cannot reach b0"
    r1=$(xdp_fwd_redirected)
    [ $((r1 - r0)) -ge 20 ] || die "xdp-fwd: 5 pings a0 -> b0 were redirected $((r1 - r0)) times, not 20: the row would measure the kernel's path, not XDP ($(xdp_fwd_counters | tr '\n' ' '))"
    log "xdp-fwd: attached to $(for n in a b; do echo -n "$n:" $(xdp_fwd_ifaces "$n") " "; done)(5 pings: $((r1 - r0)) redirects)"
}

# Detach, restore the offloads, drop the pins; records the row's counters in $OUT. Does nothing
# when the row is not set up, so bench/compare calls it before every row and on exit.
xdp_fwd_down() {
    [ -d "$XDP_FWD_PIN" ] || return 0
    local n dev
    xdp_fwd_counters > "$OUT/xdp-fwd-counters.txt" 2>/dev/null || true
    log "xdp-fwd: program counters over the row: $(grep -v ' 0$' "$OUT/xdp-fwd-counters.txt" | tr '\n' ' ')"
    for n in a b; do
        for dev in $(xdp_fwd_ifaces "$n" 2>/dev/null); do
            ip -n "$PF-$n" link set dev "$dev" xdpdrv off 2>/dev/null || true
        done
    done
    xdp_fwd_offloads off 2>/dev/null || true
    rm -rf "$XDP_FWD_PIN"
}
