# The routed bed's rows of bench/compare (sourced by it, not run): pods on nodes a and b
# of scripts/topology-routed, on two subnets joined by a router, through the kernel's
# own routing (static routes via the router) and through podfwd in native, tunnel and
# hybrid mode; and, in hybrid mode, pod a0 -> pod d0 on node a's own subnet (native).
#
#   routed-kernel                the kernel: nodes route the remote PodCIDRs via the router,
#                                the router each PodCIDR to its node (the baseline)
#   routed-podfwd-native         podfwd native; the router routes the PodCIDRs (static)
#   routed-podfwd-tunnel         podfwd tunnel: VXLAN between the node IPs, nothing routed
#                                but the node IPs
#   routed-podfwd-hybrid         podfwd hybrid, a0 -> b0: b is behind the router, so VXLAN
#   routed-podfwd-hybrid-onlink  podfwd hybrid, a0 -> d0: d is on a's subnet, so native
#                                (this path does not cross the router)
#
# Their pods are the bed's static ones (a0, b0, d0), listed as endpoints in podfwd's
# config, whatever --pods says. The rows run bench/compare's own tests (tcp, udp64,
# latency, ping_rtt). Those reach namespaces as "$PF-NAME", so while routed rows run PF
# is the routed bed's prefix ($PF_ROUTED, default pfh; not a test suite's) and the
# two-node bed's prefix is kept in ROUTED_L2_PF; routed_leave (before a two-node row)
# and routed_cleanup (on exit) put it back.
# shellcheck shell=bash

PF_ROUTED="${PF_ROUTED:-pfh}"
[[ "$PF_ROUTED" =~ ^[a-z][a-z0-9]*$ ]] || die "PF_ROUTED=$PF_ROUTED: a namespace prefix is lower-case letters and digits"
case "$PF_ROUTED" in pft|pfc|pfo) die "PF_ROUTED=$PF_ROUTED is a test suite's namespace prefix; use another" ;; esac
ROUTED_ROWS="routed-kernel routed-podfwd-native routed-podfwd-tunnel routed-podfwd-hybrid routed-podfwd-hybrid-onlink"
TOPO_ROUTED="$PODFWD_ROOT/scripts/topology-routed"
ROUTED_L2_PF=""
ROUTED_UP=""

routed_topo() { PF="$PF_ROUTED" "$TOPO_ROUTED" "$@"; }
routed_nsx() { local n="$1"; shift; ip netns exec "$PF_ROUTED-$n" "$@"; }

# Whether the rows in $1 include one of the routed bed's (or one of the two-node bed's).
routed_wanted() { [[ " $1 " == *" routed-"* ]]; }
l2_wanted() { local r; for r in $1; do [[ "$r" == routed-* ]] || return 0; done; return 1; }

# The podfwd processes in the routed bed's node namespaces.
routed_podfwd_pids() {
    local n p
    for n in a b d; do
        for p in $(ip netns pids "$PF_ROUTED-$n" 2>/dev/null); do
            [ "$(cat /proc/$p/comm 2>/dev/null)" = podfwd ] && echo "$p"
        done
    done
    return 0
}

routed_stop_podfwd() {
    local p
    for p in $(routed_podfwd_pids); do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do [ -z "$(routed_podfwd_pids)" ] && break; sleep 0.1; done
}

# podfwd's config for node $1 (d: 198.18.11.3 on node a's subnet) in mode $2, the other
# two nodes as its peers; its own control socket under the routed bed's prefix.
routed_config() {
    local me="$1" mode="$2" n
    declare -A ip=([a]=198.18.11.2 [b]=198.18.12.2 [d]=198.18.11.3) pods=([a]=11 [b]=12 [d]=14)
    cat <<EOF
node: {name: node-$me, ip: ${ip[$me]}, uplink: eth0, pod_cidr: 10.0.${pods[$me]}.0/24}
mode: $mode
cluster_cidr: 10.0.0.0/16
gateway: 169.254.1.1
vxlan: {port: 8472, vni: 1}
endpoints:
  - {ip: 10.0.${pods[$me]}.2, interface: lxc0}
  - {ip: 10.0.${pods[$me]}.3, interface: lxc1}
nodes:
EOF
    for n in a b d; do
        [ "$n" = "$me" ] && continue
        echo "  - {name: node-$n, ip: ${ip[$n]}, pod_cidr: 10.0.${pods[$n]}.0/24}"
    done
    cat <<EOF
workers: {count: 1}
umem: {frames: 16384, frame_size: 4096}
metrics: {listen: 127.0.0.1:9475}
control: {socket: /run/podfwd/$PF_ROUTED-node-$me.sock}
EOF
}

routed_start_podfwd() { # mode
    local n cfg log
    for n in a b d; do
        cfg="$OUT/routed-node-$n.$1.yaml" log="$OUT/routed-podfwd-$n-$1.log"
        routed_config "$n" "$1" >"$cfg"
        routed_nsx "$n" "$PODFWD" run --config "$cfg" >"$log" 2>&1 &
    done
    for n in a b d; do
        local ok=""
        for _ in $(seq 100); do
            if routed_nsx "$n" "$PODFWD" status --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(0 if j["ready"] and j["endpoints_resolved"]==j["endpoints"] else 1)' 2>/dev/null; then
                ok=1; break
            fi
            sleep 0.1
        done
        [ -n "$ok" ] || die "podfwd on routed node $n not ready; see $OUT/routed-podfwd-$n-$1.log"
    done
    # What node a decided per node (hybrid: native to d, VXLAN to b).
    routed_nsx a "$PODFWD" status --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print("podfwd on node a (%s): %s" % (j["mode"], ", ".join("%s %s" % (n["name"], n["path"]) for n in j["nodes"])))' >&2
}

# The routed bed, once: nodes a, b (behind the router) and d (on a's subnet).
routed_up() {
    [ -z "$ROUTED_UP" ] || return 0
    [ "$PF_ROUTED" != "$PF" ] || die "PF_ROUTED ($PF_ROUTED) must differ from the two-node bed's PF ($PF)"
    log "routed bed ($PF_ROUTED): nodes a, b behind a router, d on a's subnet"
    ROUTED_UP=1
    routed_topo up --nodes a,b,d --pod-mtu 1500
}

# Before a two-node row: the routed bed's podfwds stopped, PF back to the two-node bed's.
routed_leave() {
    [ -n "$ROUTED_L2_PF" ] || return 0
    routed_stop_podfwd
    export PF="$ROUTED_L2_PF"
    ROUTED_L2_PF=""
}

# setup for a routed row: sets SRC DST_NS DST, and SRC_IP SRC_MAC GW_MAC for the 64-byte
# test's frames (pod a0's eth0 and its host-side veth), as bench/compare's setup does.
routed_setup() {
    if [ -z "$ROUTED_L2_PF" ]; then
        stop_podfwd # the two-node bed's, if any
        routed_up
        ROUTED_L2_PF="$PF"
        export PF="$PF_ROUTED"
    fi
    routed_stop_podfwd
    routed_topo kernel off
    SRC=a0 DST_NS=b0 DST=10.0.12.2 SRC_IP=10.0.11.2
    case "$1" in
        routed-kernel) routed_topo pod-mtu 1500; routed_topo kernel native ;;
        routed-podfwd-native) routed_topo pod-mtu 1500; routed_topo kernel router; routed_start_podfwd native ;;
        routed-podfwd-tunnel) routed_topo pod-mtu 1450; routed_start_podfwd tunnel ;;
        routed-podfwd-hybrid) routed_topo pod-mtu 1450; routed_start_podfwd hybrid ;;
        routed-podfwd-hybrid-onlink) routed_topo pod-mtu 1450; routed_start_podfwd hybrid; DST_NS=d0 DST=10.0.14.2 ;;
        *) die "unknown row $1 (routed rows: $ROUTED_ROWS)" ;;
    esac
    SRC_MAC=$(routed_nsx a0 cat /sys/class/net/eth0/address) GW_MAC=$(routed_nsx a cat /sys/class/net/lxc0/address)
    # Warm up neighbours and caches.
    routed_nsx "$SRC" ping -c 3 -i 0.2 -W 1 "$DST" >/dev/null || die "row $1: $SRC cannot reach $DST"
}

# What hybrid mode puts on the wire in the routed bed: a0 -> b0 captured on the
# router's ra, a0 -> d0 on the switch's port toward d.
routed_capture_demo() {
    routed_topo pod-mtu 1450
    routed_start_podfwd hybrid
    local what where ns dst addr pcap cap
    for what in "b0 ra r 10.0.12.2" "d0 sd s 10.0.14.2"; do
        read -r dst where ns addr <<<"$what"
        pcap="$OUT/wire-routed-hybrid-$dst.pcap"
        routed_nsx "$ns" timeout 8 tshark -i "$where" -c 1 -w "$pcap" -f "icmp or udp port 8472" >/dev/null 2>&1 &
        cap=$!
        sleep 2.5
        routed_nsx a0 ping -c 2 -i 0.3 "$addr" >/dev/null || true
        wait "$cap" 2>/dev/null || true
        echo
        echo "---- hybrid mode in the routed bed: a0 -> $dst captured on $where ($PF_ROUTED-$ns) ----"
        tshark -n -r "$pcap" -d udp.port==8472,vxlan -V 2>/dev/null \
            | grep -iE "^(Ethernet II|Internet Protocol|User Datagram|Virtual eXtensible|Internet Control)|Destination Port:" \
            | sed 's/^/  /' || true
    done
    routed_stop_podfwd
}

# The report's "Pods:" line for the rows in $ROWS; $1 is the two-node bed's.
routed_pods_note() {
    local l2="" routed=""
    l2_wanted "$ROWS" && l2="$1"
    routed_wanted "$ROWS" && routed="routed rows: the routed bed's static pods (a0, b0, d0 of scripts/topology-routed), listed as endpoints in podfwd's config"
    echo "$l2${l2:+${routed:+; }}$routed"
}

# On exit (also on Ctrl-C): the routed bed's processes and namespaces, if this run made
# the bed, and PF put back.
routed_cleanup() {
    if [ -n "$ROUTED_UP" ]; then
        routed_stop_podfwd
        routed_topo down >/dev/null 2>&1 || true
    fi
    [ -z "$ROUTED_L2_PF" ] || export PF="$ROUTED_L2_PF"
    ROUTED_L2_PF=""
}
