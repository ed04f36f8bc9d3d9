// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * podfwd steering program.
 *
 * It only STEERS: a frame podfwd must handle goes to the AF_XDP socket of the
 * rx queue it arrived on (XSKMAP key = slot * 16 + rx_queue_index); every
 * other frame gets XDP_PASS and the kernel handles it as if podfwd were not
 * there. No forwarding logic lives here. The agent (crates/bpf) fills the maps.
 *
 * Rules (role comes from the `ifaces` map, keyed by ingress ifindex):
 *  - pod-facing: IPv4 (optionally behind one 802.1Q tag) with a full 20-byte
 *    IPv4 header, dst inside the cluster CIDR and dst != node IP -> redirect.
 *    IHL and total length are not validated here: userspace drops malformed
 *    frames with a counted reason, which is more visible than a silent PASS.
 *  - uplink, tunnel mode: unfragmented IPv4 (IHL respected) UDP to
 *    node_ip:vxlan_port -> redirect.
 *  - uplink, native mode: IPv4 dst inside the PodCIDR -> redirect.
 *  - uplink, hybrid mode: the tunnel rule for traffic to the node IP, the native
 *    rule for the rest.
 *
 * Redirects use bpf_redirect_map(..., XDP_PASS): when no socket is registered
 * for the queue, the lower flag bits are the fallback action, so the frame is
 * passed to the stack instead of dropped (kernel: __bpf_xdp_redirect_map()).
 *
 * Two entry points run the same rules: podfwd_steer ("xdp") and
 * podfwd_steer_mb ("xdp.frags", Linux 5.18+). The agent loads one of them:
 * the frags one when podfwd uses multi-buffer AF_XDP (offload.multi_buffer),
 * so that a frame larger than a page (a jumbo MTU) reaches the program as
 * several fragments and the socket as a descriptor chain. Only the linear
 * part (data .. data_end) is read, which holds every header looked at here.
 * Either keeps TSO off on the pod side of a veth (veth_fix_features strips
 * it while the host side has any XDP program).
 *
 * No CO-RE / vmlinux.h: only UAPI headers, so it builds wherever
 * linux-libc-dev and libbpf-dev are installed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 16 /* queues per interface slot in the XSKMAP key */
#define MAX_SLOTS 512 /* interfaces: the uplink and up to 511 pods */

#define ROLE_UPLINK 1
#define ROLE_POD 2

#define MODE_TUNNEL 1
#define MODE_NATIVE 2
#define MODE_HYBRID 3 /* VXLAN to us (tunnel rule) or IPv4 to our PodCIDR (native rule) */

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif

/* IPv4 frag_off: MF flag | 13-bit fragment offset (RFC 791 section 3.1). */
#define IP_MF_OFFSET 0x3fff

struct iface {
	__u32 slot;
	__u32 role;
};

/* All addresses and masks in network byte order; vxlan_port too. */
struct cfg {
	__u32 cluster_net;
	__u32 cluster_mask;
	__u32 pod_net;
	__u32 pod_mask;
	__u32 node_ip;
	__u16 vxlan_port;
	__u8 mode;
	__u8 pad;
};

/* Keep in sync with STAT_NAMES in crates/bpf/src/lib.rs. */
enum stat {
	STAT_REDIRECTED = 0,
	STAT_REDIRECT_FAILED,      /* no socket on this queue: fell back to PASS */
	STAT_PASSED_UNKNOWN_IFACE, /* ingress ifindex not in `ifaces` / no cfg */
	STAT_PASSED_NOT_IPV4,      /* ARP, IPv6, other ethertypes */
	STAT_PASSED_MALFORMED,     /* IPv4 ethertype but headers truncated */
	STAT_PASSED_NOT_CLUSTER,   /* dst outside the cluster / pod CIDR */
	STAT_PASSED_NOT_OURS,      /* node IP, non-VXLAN, fragments */
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_SLOTS * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct iface);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int count(__u32 idx, int action)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);

	if (c)
		*c += 1; /* per-CPU slot: no atomic needed */
	return action;
}

static __always_inline int steer(struct xdp_md *ctx, const struct iface *ifc)
{
	__u32 queue = ctx->rx_queue_index;
	__u32 key;
	int ret;

	if (queue >= MAX_QUEUES || ifc->slot >= MAX_SLOTS)
		return count(STAT_REDIRECT_FAILED, XDP_PASS);
	key = ifc->slot * MAX_QUEUES + queue;
	ret = bpf_redirect_map(&xsks, key, XDP_PASS);
	if (ret == XDP_REDIRECT)
		return count(STAT_REDIRECTED, ret);
	return count(STAT_REDIRECT_FAILED, ret);
}

static __always_inline int in_net(__u32 addr, __u32 net, __u32 mask)
{
	return (addr & mask) == net;
}

static __always_inline int steer_frame(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 zero = 0;
	struct ethhdr *eth = data;
	const struct iface *ifc;
	const struct cfg *c;
	struct iphdr *iph;
	void *l3;
	__u16 proto;

	ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	c = bpf_map_lookup_elem(&cfg, &zero);
	if (!ifc || !c || c->mode == 0)
		return count(STAT_PASSED_UNKNOWN_IFACE, XDP_PASS);

	if ((void *)(eth + 1) > data_end)
		return count(STAT_PASSED_MALFORMED, XDP_PASS);
	proto = eth->h_proto;
	l3 = eth + 1;

	if (ifc->role == ROLE_POD) {
		/* One 802.1Q tag: steer it like untagged traffic so userspace
		 * sees (and counts/drops) tagged pod frames rather than the
		 * kernel quietly handling them. */
		if (proto == bpf_htons(ETH_P_8021Q)) {
			__be16 *inner = l3 + 2; /* TCI, then inner ethertype */

			if ((void *)(inner + 1) > data_end)
				return count(STAT_PASSED_MALFORMED, XDP_PASS);
			proto = *inner;
			l3 = inner + 1;
		}
		if (proto != bpf_htons(ETH_P_IP))
			return count(STAT_PASSED_NOT_IPV4, XDP_PASS);
		iph = l3;
		if ((void *)(iph + 1) > data_end)
			return count(STAT_PASSED_MALFORMED, XDP_PASS);
		if (!in_net(iph->daddr, c->cluster_net, c->cluster_mask))
			return count(STAT_PASSED_NOT_CLUSTER, XDP_PASS);
		if (iph->daddr == c->node_ip)
			return count(STAT_PASSED_NOT_OURS, XDP_PASS);
		return steer(ctx, ifc);
	}

	if (ifc->role != ROLE_UPLINK)
		return count(STAT_PASSED_UNKNOWN_IFACE, XDP_PASS);

	if (proto != bpf_htons(ETH_P_IP))
		return count(STAT_PASSED_NOT_IPV4, XDP_PASS);
	iph = l3;
	if ((void *)(iph + 1) > data_end)
		return count(STAT_PASSED_MALFORMED, XDP_PASS);

	if (c->mode == MODE_NATIVE ||
	    (c->mode == MODE_HYBRID && iph->daddr != c->node_ip)) {
		if (!in_net(iph->daddr, c->pod_net, c->pod_mask))
			return count(STAT_PASSED_NOT_CLUSTER, XDP_PASS);
		return steer(ctx, ifc);
	}

	if (c->mode == MODE_TUNNEL || c->mode == MODE_HYBRID) {
		struct udphdr *udp;
		__u32 ihl = iph->ihl;

		if (iph->daddr != c->node_ip || iph->protocol != IPPROTO_UDP ||
		    (iph->frag_off & bpf_htons(IP_MF_OFFSET)))
			return count(STAT_PASSED_NOT_OURS, XDP_PASS);
		if (ihl < 5)
			return count(STAT_PASSED_MALFORMED, XDP_PASS);
		udp = (void *)iph + ihl * 4;
		if ((void *)(udp + 1) > data_end)
			return count(STAT_PASSED_MALFORMED, XDP_PASS);
		if (udp->dest != c->vxlan_port)
			return count(STAT_PASSED_NOT_OURS, XDP_PASS);
		return steer(ctx, ifc);
	}

	return count(STAT_PASSED_UNKNOWN_IFACE, XDP_PASS);
}

SEC("xdp")
int podfwd_steer(struct xdp_md *ctx)
{
	return steer_frame(ctx);
}

SEC("xdp.frags")
int podfwd_steer_mb(struct xdp_md *ctx)
{
	return steer_frame(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
