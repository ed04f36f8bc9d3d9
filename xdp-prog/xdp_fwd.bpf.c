// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kernel's own XDP forwarding, as a reference for bench/compare (row
 * xdp-fwd): not part of podfwd.
 *
 * The shape of the kernel's samples/bpf/xdp_fwd_kern.c, IPv4 only: a FIB
 * lookup with bpf_fib_lookup() (full lookup, flags 0: FIB rules, the main
 * table and the neighbour table), then the L2 rewrite from its answer, TTL
 * decrement with an incremental checksum update (include/net/ip.h
 * ip_decrease_ttl()), and a redirect to the egress interface through a
 * DEVMAP_HASH. Everything else goes to the stack with XDP_PASS: non-IPv4, TTL
 * <= 1, local delivery, a missing neighbour (the stack resolves it, the next
 * frames are redirected), frames that need fragmentation, and egress
 * interfaces not in tx_ports (only those where the bench attached this
 * program and whose peers can take redirected frames).
 *
 * One copy of the program and its maps per node namespace: DEVMAP values
 * are ifindexes, which are per network namespace.
 *
 * Plain "xdp" section, no frags: like podfwd's program, attaching it to a
 * veth turns TSO off on the peer, so the pods send MTU-sized frames.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif

/* counters keys: 0..BPF_FIB_LKUP_RET_NO_SRC_ADDR are bpf_fib_lookup()'s return
 * codes (0 = success, the frame was redirected), then these. */
#define CNT_NOT_IPV4 10 /* not IPv4, or a truncated IPv4 header */
#define CNT_TTL 11 /* TTL <= 1: the stack sends the ICMP time exceeded */
#define CNT_NOT_TX_PORT 12 /* route found, egress not in tx_ports */
#define CNT_LOOKUP_ERROR 13 /* bpf_fib_lookup() returned a negative errno */
#define CNT_MAX 14

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* ifindex */
	__type(value, __u32); /* the same ifindex */
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 key, int action)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &key);

	if (c)
		*c += 1;
	return action;
}

/* include/net/ip.h ip_decrease_ttl(): RFC 1624 incremental update. */
static __always_inline void ip_decrease_ttl(struct iphdr *iph)
{
	__u32 check = (__u32)iph->check;

	check += (__u32)bpf_htons(0x0100);
	iph->check = (__sum16)(check + (check >= 0xFFFF));
	iph->ttl--;
}

SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	long rc;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(CNT_NOT_IPV4, XDP_PASS);
	if (iph->ttl <= 1)
		return count(CNT_TTL, XDP_PASS);

	fib.family = AF_INET;
	fib.tos = iph->tos;
	fib.l4_protocol = iph->protocol;
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return count(rc >= 0 && rc < CNT_NOT_IPV4 ? rc : CNT_LOOKUP_ERROR, XDP_PASS);
	if (!bpf_map_lookup_elem(&tx_ports, &fib.ifindex))
		return count(CNT_NOT_TX_PORT, XDP_PASS);

	ip_decrease_ttl(iph);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	count(BPF_FIB_LKUP_RET_SUCCESS, 0);
	return bpf_redirect_map(&tx_ports, fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
