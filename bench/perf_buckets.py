#!/usr/bin/env python3
"""Group a `perf record -a -g` profile into cost buckets, per delivered frame.

    perf script -F comm,tid,time,ip,sym,dso -i perf.data \
        | bench/perf_buckets.py summary --row R --test T --frames N --cpus C [--json OUT]
    bench/perf_buckets.py table OUT1.json OUT2.json ...   # one markdown table
    bench/perf_buckets.py worker --frames N --prefix P    # podfwd rows: counters, syscalls
    bench/perf_buckets.py drops OUT                       # podfwd rows: drops vs retransmits

`summary` reads perf script's callchains on stdin, puts every sample into one bucket
(the rules below), and prints the buckets' shares of all samples and their CPU time per
delivered frame: share x (the profile's wall time x the CPUs sampled) / frames. The wall
time is the span between the first and the last sample. `--frames` is what the row
delivered over the recorded interval (bench/compare counts it at the receiving pod).
It also prints the top kernel and userspace symbols by self samples and the share of
each command. `table` puts the summaries' µs per frame side by side.

How a sample is assigned: its stack is walked from the leaf (where the CPU was) towards
the root, and the first frame whose function matches a bucket's rule decides; generic
helpers (memcpy, skb allocation, slab, page pool, locks) match no rule, so their cost goes
to the subsystem that called them. So a memcpy under xsk_build_skb counts as AF_XDP TX,
and a memcpy under tcp_recvmsg (even if that ran inside podfwd's sendto, through veth)
counts as the pods' TCP/UDP stack. A sample whose leaf is in userspace goes by its
binary and command. Samples no rule claims are `other kernel` / `other userspace`.
"""
import argparse
import collections
import json
import re
import sys

# (bucket, regex on the function name), tried in this order at every stack frame: the
# innermost frame that matches any rule wins; at one frame the first rule wins.
RULES = [
    # The CPU had nothing to run (the idle loop, halted in the hypervisor).
    ("idle", r"^(do_idle|cpuidle_idle_call|default_idle(_call)?|pv_native_safe_halt|native_safe_halt|"
             r"acpi_idle_.*|intel_idle.*|poll_idle|cpu_startup_entry|arch_cpu_idle|mwait_idle.*)$"),
    # The profiler's own work (perf's ring buffer, sample output): not the row's cost.
    ("profiler (perf)", r"^(perf_(event|output|prepare|callchain|swevent|sample)_.*|__perf_event_overflow|"
                        r"perf_tp_event|get_perf_callchain|perf_callchain_.*|unwind_.*|__unwind_.*)$"),
    # Scheduler: context switches, wake-ups (try_to_wake_up, the wake-up IPI), sched_yield,
    # epoll sleep/wake, futexes, timers for sleeps.
    ("scheduler, wake-ups, yield", r"^(__?schedule|schedule(_hrtimeout_range.*|_timeout)?|pick_next_task.*|"
                                   r"finish_task_switch.*|__switch_to(_asm)?|try_to_wake_up|ttwu_.*|"
                                   r"(en|de)queue_task.*|(en|de)queue_entity|update_curr|update_load_avg|"
                                   r"do_sched_yield|__x64_sys_sched_yield|yield_task_fair|psi_.*|"
                                   r"set_next_entity|put_prev_.*|__wake_up.*|ep_poll.*|do_epoll_wait|"
                                   r"ep_send_events|ep_item_poll|default_wake_function|autoremove_wake_function|"
                                   r"futex_.*|hrtimer_(start|cancel).*|sched_clock.*|"
                                   r"flush_smp_call_function_queue|native_smp_send_reschedule|"
                                   r"__smp_call_single_queue|sysvec_(call_function_single|reschedule_ipi)|"
                                   r"select_task_rq.*|check_preempt.*|resched_curr|newidle_balance|"
                                   r"sched_balance_.*|load_balance|idle_cpu|available_idle_cpu)$"),
    # Copy-mode AF_XDP TX: podfwd's sendto builds an skb per descriptor and copies the
    # frame into it (xsk_build_skb), then hands it to the device; completions.
    ("AF_XDP copy-mode TX (skb build + copy)", r"^(__?xsk_generic_xmit|xsk_build_skb.*|xsk_sendmsg|__xsk_sendmsg|"
                                              r"xsk_destruct_skb|xsk_consume_skb|xsk_cq_.*|xsk_skb_.*|"
                                              r"__dev_direct_xmit|xsk_tx_peek_desc|xskq_cons_.*|xsk_drop_skb|"
                                              r"xsk_set_destructor_arg|xsk_skb_init_misc)$"),
    # AF_XDP RX in copy mode: the redirect into the socket copies the frame into a UMEM
    # frame from the fill ring; xsk_poll/recvfrom wake-ups.
    ("AF_XDP RX (xsk_rcv copy into UMEM)", r"^(xsk_rcv|__xsk_rcv.*|xsk_rcv_check|__xsk_map_redirect|xsk_map_redirect|"
                                          r"__?xsk_map_flush|xsk_flush|xp_alloc.*|xsk_buff_alloc|xsk_copy_xdp.*|"
                                          r"xsk_poll|xsk_recvmsg|__xsk_recvmsg|xsk_generic_rcv|xsk_map_lookup.*)$"),
    # XDP programs (JIT-ed bpf_prog_*), redirect through maps, devmap flush, the veth
    # driver's conversion of an skb into an xdp_buff (a copy into a page-pool page when
    # the headroom is short) and the skb rebuilt from a redirected frame.
    ("XDP program, redirect, veth skb<->xdp", r"^(bpf_prog_.*|bpf_dispatcher_.*|bpf_xdp_redirect_map|xdp_do_redirect.*|"
                                            r"__xdp_do_redirect.*|xdp_do_flush|bq_xmit_all|bq_enqueue|dev_map_.*|"
                                            r"__dev_flush|bpf_fib_lookup|bpf_xdp_fib_lookup|bpf_ipv4_fib_lookup|"
                                            r"veth_convert_skb_to_xdp_buff|veth_xdp_rcv_skb|veth_xdp_rcv_one|"
                                            r"veth_xdp_rcv_bulk_skb|veth_xdp_xmit|veth_ndo_xdp_xmit|"
                                            r"__xdp_build_skb_from_frame|xdp_build_skb_from_frame|"
                                            r"xdp_convert_.*|__xdp_return|xdp_return_.*|do_xdp_generic|"
                                            r"bpf_prog_run_generic_xdp|netif_receive_generic_xdp)$"),
    # Kernel VXLAN device (the kernel-vxlan rows).
    ("kernel VXLAN device", r"^(vxlan_.*|udp_tunnel.*|iptunnel_.*|ip_tunnel_.*|__vxlan_.*|gro_cells_.*)$"),
    # Checksums computed in software (TCP/UDP, skb_checksum_help, partial-checksum
    # completion in the kernel).
    ("checksum (software)", r"^(csum_partial.*|do_csum|csum_and_copy.*|skb_checksum.*|__skb_checksum.*|"
                            r"csum_block_add_ext|csum_partial_ext|__skb_gro_checksum_complete|"
                            r"skb_csum_hwoffload_help|nf_ip_checksum|__skb_checksum_complete.*)$"),
    # The 64-byte test's generator: trafgen's packet socket (its TX ring, the skb it
    # builds per frame).
    ("trafgen packet socket TX", r"^(packet_.*|tpacket_.*|__packet_.*)$"),
    # The pods' own sockets: TCP and UDP send and receive, the copies to and from user
    # memory. Generic socket helpers (sock_alloc_send_pskb, sock_wfree, sock_def_readable)
    # match no rule: AF_XDP's copy mode uses them too, so they go to their caller.
    ("pods' TCP/UDP stack + socket copies", r"^(tcp_.*|__tcp_.*|tcp4_.*|udp_.*|__udp.*|udpv6_.*|udp4_.*|inet_.*|__inet_.*|"
                                          r"ip_local_deliver.*|ip_protocol_deliver_rcu|raw_local_deliver|"
                                          r"sock_(recvmsg|sendmsg|read_iter|write_iter|rfree|poll)|__sock_sendmsg|"
                                          r"sk_stream_.*|sk_page_frag_refill|sk_reset_timer|__sk_mem_.*|"
                                          r"sk_forced_mem_schedule|sk_filter_trim_cap|skb_copy_datagram.*|"
                                          r"__skb_datagram_iter|_copy_(to|from)_iter|copy_(to|from)_user.*|"
                                          r"rep_movs_alternative|simple_copy_to_iter|"
                                          r"__sys_(sendto|recvfrom|sendmsg|recvmsg)|____sys_(send|recv)msg|"
                                          r"ip_queue_xmit|__ip_queue_xmit|"
                                          r"ip_send_check|ip_make_skb|ip_append_data|__ip_append_data|"
                                          r"release_sock|lock_sock_nested|__release_sock|skb_attempt_defer_free|"
                                          r"__x64_sys_(sendto|recvfrom|sendmsg|recvmsg|write|read|writev|readv)|"
                                          r"sock_(read|write)_iter|vfs_(read|write)|ksys_(read|write))$"),
    # veth: the device's xmit (which, without NAPI, delivers to the peer inside the
    # caller) and its NAPI poll.
    ("veth xmit/rx", r"^(veth_.*|__veth_.*)$"),
    # Everything else of the kernel's forwarding and device layer: bridge/switch,
    # routing and IP forwarding, the generic receive path, GRO/GSO, qdisc, neighbours.
    ("IP forwarding, bridge, netdev core, GRO/GSO", r"^(br_.*|__br_.*|ip_forward.*|ip_route_.*|ip_rcv.*|ip_sublist_rcv.*|"
                                                    r"ip_list_rcv|fib_.*|__fib_.*|ip_output|ip_finish_output.*|"
                                                    r"__ip_finish_output|ip_mc_.*|ip_local_out|__ip_local_out|"
                                                    r"neigh_.*|__neigh_.*|__netif_receive_skb.*|netif_receive_skb.*|"
                                                    r"netif_rx.*|__netif_rx|process_backlog|__napi_poll|napi_.*|"
                                                    r"net_rx_action|gro_.*|dev_gro_receive|inet_gro_.*|tcp4_gro_.*|"
                                                    r"skb_gro_.*|__skb_gso_segment|skb_segment|skb_mac_gso_segment|"
                                                    r"inet_gso_segment|tcp_gso_segment|tcp4_gso_segment|"
                                                    r"validate_xmit_skb.*|dev_hard_start_xmit|__dev_queue_xmit|"
                                                    r"dev_queue_xmit.*|sch_direct_xmit|__qdisc_run|pfifo_fast_.*|"
                                                    r"eth_type_trans|enqueue_to_backlog|rps_.*|nf_hook_slow|"
                                                    r"netdev_core_pick_tx|dst_release|ipv4_dst_check|"
                                                    r"skb_network_protocol|netif_skb_features|dev_forward_skb.*|"
                                                    r"__dev_forward_skb.*|eth_gro_.*|ip_defrag)$"),
    # Syscall entry and return, and softirq/interrupt entry (self time only: what they
    # call has its own bucket).
    ("syscall + softirq/irq entry", r"^(entry_SYSCALL_64.*|do_syscall_64|syscall_exit_to_user_mode.*|"
                                    r"exit_to_user_mode.*|syscall_return_via_sysret|x64_sys_call|"
                                    r"__do_softirq|handle_softirqs|do_softirq.*|irq_exit_rcu|__irq_exit_rcu|"
                                    r"__local_bh_enable_ip|local_bh_enable|sysvec_.*|asm_sysvec_.*|"
                                    r"common_interrupt|asm_common_interrupt|__sysvec_.*|"
                                    r"fpregs_.*|switch_fpu_.*|restore_fpregs.*|"
                                    r"__x64_sys_.*|__se_sys_.*|__do_sys_.*|do_syscall_.*)$"),
]
RULES = [(b, re.compile(r)) for b, r in RULES]

# Userspace: by binary and command.
def user_bucket(comm, sym, dso):
    if comm.startswith("podfwd") or "/podfwd" in dso:
        if re.match(r"^(pipeline|wire|route)::|<pipeline::", sym):
            return "podfwd userspace: pipeline"
        if re.match(r"^(xsk)::|<xsk::", sym):
            return "podfwd userspace: rings (xsk)"
        return "podfwd userspace: worker loop, other"
    if comm == "perf":
        return "profiler (perf)"
    return "endpoints' userspace (iperf3, trafgen, sockperf)"

# The bench's own processes. The machine may be shared: a sample of any other command is
# "other processes" (not the row's cost) unless its stack shows network work, which
# softirqs do in whatever process they interrupt.
OURS = re.compile(r"^(podfwd.*|iperf3|trafgen|sockperf|ksoftirqd/\d+|swapper(/\d+)?|perf|napi/.*|kworker/.*)$")
NET = re.compile(r"^(net_rx_action|__napi_poll|process_backlog|veth_.*|xsk_.*|__xsk_.*|__dev_queue_xmit|"
                 r"__netif_receive_skb.*|ip_rcv|tcp_v4_rcv|udp_rcv|br_handle_frame)$")

BUCKET_ORDER = [b for b, _ in RULES] + [
    "podfwd userspace: pipeline", "podfwd userspace: rings (xsk)", "podfwd userspace: worker loop, other",
    "endpoints' userspace (iperf3, trafgen, sockperf)", "other kernel", "other processes (not the bench)",
]
# Kept out of "busy" (µs of CPU the row used per frame).
NOT_BUSY = {"idle", "profiler (perf)", "other processes (not the bench)"}

HEADER = re.compile(r"^(.*?)\s+(\d+)\s+(\d+\.\d+):\s*$")
FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def is_kernel(dso):
    """The kernel, its modules and JIT-ed BPF programs (the XDP programs)."""
    return (dso.startswith("[kernel") or dso.startswith("bpf_prog_")
            or dso.startswith("[") and dso not in ("[unknown]", "[vdso]"))


def parse(stream):
    """Yield (comm, time, [(sym, dso), ...] leaf first) per sample."""
    comm, t, stack = None, None, []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if comm is not None:
                yield comm, t, stack
            comm, stack = None, []
            continue
        m = HEADER.match(line)
        if m and not line.startswith(("\t", " ")):
            if comm is not None:
                yield comm, t, stack
            comm, t, stack = m.group(1).strip(), float(m.group(3)), []
            continue
        f = FRAME.match(line)
        if f and comm is not None:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", f.group(2))
            stack.append((sym, f.group(3)))
    if comm is not None:
        yield comm, t, stack


def classify(comm, stack):
    """-> (bucket, the function that decided it)."""
    if not OURS.match(comm) and not any(NET.match(sym) for sym, _ in stack):
        return "other processes (not the bench)", comm
    if not stack:
        return "other kernel", "?"
    leaf_sym, leaf_dso = stack[0]
    if comm == "perf" and not is_kernel(leaf_dso):
        return "profiler (perf)", leaf_sym
    if not is_kernel(leaf_dso):
        return user_bucket(comm, leaf_sym, leaf_dso), leaf_sym
    for sym, dso in stack:
        if not is_kernel(dso):
            break
        for bucket, rx in RULES:
            if rx.match(sym):
                return bucket, sym
    return "other kernel", leaf_sym


def summary(args):
    buckets = collections.Counter()
    deciders = collections.defaultdict(collections.Counter)
    ksyms, usyms, comms = collections.Counter(), collections.Counter(), collections.Counter()
    t0 = t1 = None
    n = 0
    for comm, t, stack in parse(sys.stdin):
        n += 1
        t0 = t if t0 is None else min(t0, t)
        t1 = t if t1 is None else max(t1, t)
        b, by = classify(comm, stack)
        buckets[b] += 1
        deciders[b][by] += 1
        if stack:
            sym, dso = stack[0]
            (ksyms if is_kernel(dso) else usyms)[f"{sym} ({dso.rsplit('/', 1)[-1]})"] += 1
        comms[re.sub(r"\d+$", "N", comm) if comm.startswith(("ksoftirqd", "kworker", "swapper")) else comm] += 1
    if not n:
        sys.exit("perf_buckets: no samples on stdin")
    wall = (t1 - t0) if t1 > t0 else 1.0
    cpu_us = wall * args.cpus * 1e6
    per_sample_us = cpu_us / n
    frames = args.frames
    out = {
        "row": args.row, "test": args.test, "samples": n, "wall_s": wall, "cpus": args.cpus,
        "frames": frames, "frame_unit": args.frame_unit,
        "buckets": {b: {"samples": c, "share": c / n,
                        "us_per_frame": (c * per_sample_us / frames) if frames else None,
                        "by": deciders[b].most_common(6)}
                    for b, c in buckets.items()},
    }
    busy = sum(c for b, c in buckets.items() if b not in NOT_BUSY)
    out["busy_us_per_frame"] = busy * per_sample_us / frames if frames else None
    out["top_kernel"] = ksyms.most_common(25)
    out["top_user"] = usyms.most_common(15)
    out["comms"] = comms.most_common(15)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    p = print
    p(f"# {args.row} / {args.test}: {n} samples over {wall:.2f} s on {args.cpus} CPUs; "
      f"{frames} {args.frame_unit} delivered ({frames / wall / 1e3:.1f} k/s)")
    p(f"busy CPU per frame: {out['busy_us_per_frame']:.2f} µs" if frames else "busy CPU per frame: - (nothing delivered)")
    p("")
    p(f"{'bucket':48s} {'share':>7s} {'µs/frame':>9s}")
    for b in BUCKET_ORDER:
        if b in out["buckets"]:
            v = out["buckets"][b]
            us = f"{v['us_per_frame']:.3f}" if v["us_per_frame"] is not None else "-"
            p(f"{b:48s} {100 * v['share']:6.1f}% {us:>9s}")
            if b not in NOT_BUSY:
                p("      " + ", ".join(f"{f} {100 * c / n:.1f}%" for f, c in v["by"]))
    p("")
    p("top kernel symbols (self samples):")
    for s, c in out["top_kernel"]:
        p(f"  {100 * c / n:5.1f}%  {s}")
    p("top userspace symbols (self samples):")
    for s, c in out["top_user"]:
        p(f"  {100 * c / n:5.1f}%  {s}")
    p("commands:")
    for s, c in out["comms"]:
        p(f"  {100 * c / n:5.1f}%  {s}")


SHORT = {
    "AF_XDP copy-mode TX (skb build + copy)": "XSK TX",
    "AF_XDP RX (xsk_rcv copy into UMEM)": "XSK RX",
    "XDP program, redirect, veth skb<->xdp": "XDP+redir",
    "veth xmit/rx": "veth",
    "IP forwarding, bridge, netdev core, GRO/GSO": "fwd/netdev",
    "kernel VXLAN device": "vxlan",
    "pods' TCP/UDP stack + socket copies": "pod stack",
    "checksum (software)": "csum",
    "scheduler, wake-ups, yield": "sched",
    "syscall + softirq/irq entry": "entry",
    "podfwd userspace: pipeline": "pf pipeline",
    "podfwd userspace: rings (xsk)": "pf rings",
    "podfwd userspace: worker loop, other": "pf other",
    "trafgen packet socket TX": "trafgen TX",
    "endpoints' userspace (iperf3, trafgen, sockperf)": "endpoints user",
    "other kernel": "kern other",
}


def table(args):
    rows = [json.load(open(p)) for p in args.files]
    cols = [b for b in BUCKET_ORDER if b in SHORT and any(b in r["buckets"] for r in rows)]
    print("| row | test | frames/s | busy µs/frame | " + " | ".join(SHORT[c] for c in cols) + " | idle % | others % |")
    print("|---|---|---|---|" + "---|" * len(cols) + "---|---|")
    for r in rows:
        def us(b):
            v = r["buckets"].get(b)
            return f"{v['us_per_frame']:.2f}" if v and v["us_per_frame"] is not None else "0"
        idle = r["buckets"].get("idle", {"share": 0})["share"]
        foreign = r["buckets"].get("other processes (not the bench)", {"share": 0})["share"]
        rate = f"{r['frames'] / r['wall_s'] / 1e3:.0f}k" if r["frames"] else "0"
        busy = f"{r['busy_us_per_frame']:.2f}" if r["busy_us_per_frame"] is not None else "-"
        print(f"| {r['row']} | {r['test']} | {rate} | {busy} | " + " | ".join(us(c) for c in cols) + f" | {100 * idle:.0f} | {100 * foreign:.0f} |")
    print()
    print("Columns: " + "; ".join(f"{SHORT[c]} = {c}" for c in cols) + "; idle % and others % "
          "(other processes on the machine) are shares of all samples, outside busy.")


def worker(args):
    """podfwd rows: the workers' own counters (podfwd status --json before and after, per
    node) and their system calls (perf stat --per-thread on syscall tracepoints) over the
    profiled interval, per RX batch and per delivered frame."""
    pre = args.prefix
    def load(when, n):
        try:
            return json.load(open(f"{pre}.{when}.status-{n}.json"))
        except (OSError, ValueError):
            return None
    print(f"# podfwd workers over the profiled interval ({args.frames} frames delivered at the receiving pod)")
    total_batches = 0
    for n in ("a", "b"):
        a, b = load("before", n), load("after", n)
        if not a or not b:
            print(f"node {n}: no status")
            continue
        secs = (b["time_ms"] - a["time_ms"]) / 1000
        wa = {w["id"]: w for w in a["workers"]}
        for w in b["workers"]:
            d = {k: w[k] - wa[w["id"]][k] for k in ("batches", "busy_polls", "idle_polls", "sleeps", "tx_wakeups", "rx_wakeups")}
            total_batches += d["batches"]
            print(f"node {n} worker {w['id']} over {secs:.2f} s: " + ", ".join(f"{k} {v}" for k, v in d.items()))
        ia = {i["name"]: i for i in a["interfaces"]}
        rx = tx = 0
        for i in b["interfaces"]:
            q = ia.get(i["name"])
            if not q:
                continue
            dd = {k: i[k] - q[k] for k in ("rx_packets", "tx_packets", "xsk_rx_dropped", "xsk_rx_ring_full", "xsk_fill_ring_empty")}
            rx += dd["rx_packets"]
            tx += dd["tx_packets"]
            print(f"  {i['name']}: " + ", ".join(f"{k} {v}" for k, v in dd.items()))
        nb = sum(w["batches"] - wa[w["id"]]["batches"] for w in b["workers"])
        if nb:
            print(f"  node {n}: {rx} frames received by podfwd in {nb} batches = {rx / nb:.1f} frames per batch; {tx} sent")
    try:
        lines = open(f"{pre}.syscalls.csv").read().splitlines()
    except OSError:
        return
    per = collections.defaultdict(dict)
    for l in lines:
        f = l.split(",")
        if len(f) < 4 or l.startswith("#"):
            continue
        thread, value, event = f[0], f[1], f[3]
        try:
            per[thread][event.split(":")[-1]] = int(float(value))
        except ValueError:
            pass
    print()
    print("system calls per thread (perf stat on tracepoints):")
    wsum = collections.Counter()
    for t, ev in sorted(per.items()):
        if sum(ev.values()) == 0:
            continue
        print(f"  {t}: " + ", ".join(f"{k.replace('sys_enter_', '')} {v}" for k, v in ev.items()))
        if "podfwd-w" in t:
            wsum.update(ev)
    if total_batches:
        print(f"workers together: {wsum.get('sys_enter', 0)} syscalls for {total_batches} RX batches = "
              f"{wsum.get('sys_enter', 0) / total_batches:.2f} per batch; per syscall kind per batch: "
              + ", ".join(f"{k.replace('sys_enter_', '')} {v / total_batches:.2f}" for k, v in wsum.items() if k != "sys_enter"))
    if args.frames:
        print(f"per delivered frame: {wsum.get('sys_enter', 0) / args.frames:.3f} worker syscalls")


def drops(args):
    """podfwd rows: per test and repetition, the kernel's drops on podfwd's sockets
    (XDP_STATISTICS via podfwd status, before and after the test) beside iperf3's
    retransmits, from bench/compare --perf's snapshots."""
    import glob
    import os
    runs = [json.loads(l) for l in open(os.path.join(args.out, "runs.jsonl")) if l.strip()]
    print("| row | test | rep | Gbit/s or kpps | retransmits | node a: rx_dropped / rx_ring_full | node b: rx_dropped / rx_ring_full |")
    print("|---|---|---|---|---|---|---|")
    for before in sorted(glob.glob(os.path.join(args.out, "perf", "*-r*.before.status-a.json"))):
        m = re.match(r"(.*)-(tcp1|tcp4|udp64)-r(\d+)\.before", os.path.basename(before))
        if not m:
            continue
        row, test, rep = m.group(1), m.group(2), int(m.group(3))
        cells = []
        for n in "ab":
            try:
                a = json.load(open(before.replace(".before.status-a", f".before.status-{n}")))
                b = json.load(open(before.replace(".before.status-a", f".after.status-{n}")))
            except (OSError, ValueError):
                cells.append("-")
                continue
            ia = {i["name"]: i for i in a["interfaces"]}
            d = r = 0
            for i in b["interfaces"]:
                q = ia.get(i["name"], {"xsk_rx_dropped": 0, "xsk_rx_ring_full": 0})
                d += i["xsk_rx_dropped"] - q["xsk_rx_dropped"]
                r += i["xsk_rx_ring_full"] - q["xsk_rx_ring_full"]
            cells.append(f"{d} / {r}")
        res = next((x for x in runs if x["row"] == row and x["test"] == test and x["rep"] == rep), {})
        rate = f"{res['gbps']:.2f}" if "gbps" in res else (f"{res['kpps']:.0f}" if "kpps" in res else "-")
        print(f"| {row} | {test} | {rep} | {rate} | {res.get('retransmits', '-')} | {cells[0]} | {cells[1]} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary")
    s.add_argument("--row", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--frames", type=int, required=True)
    s.add_argument("--frame-unit", default="frames")
    s.add_argument("--cpus", type=int, required=True)
    s.add_argument("--json")
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    w = sub.add_parser("worker")
    w.add_argument("--frames", type=int, required=True)
    w.add_argument("--prefix", required=True)
    d = sub.add_parser("drops")
    d.add_argument("out", help="bench/compare's output directory")
    args = ap.parse_args()
    {"summary": summary, "table": table, "worker": worker, "drops": drops}[args.cmd](args)


if __name__ == "__main__":
    main()
