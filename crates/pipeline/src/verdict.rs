//! What the pipeline decided for a frame, and the names the metrics use for it.

use route::PortId;

/// Defines a fieldless `#[repr(u8)]` enum with `COUNT`, `ALL` (in discriminant order, so
/// `ALL[x as usize] == x`) and `label()`, from one table: the labels can't drift.
macro_rules! labelled_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident => $label:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every variant, in discriminant order.
            pub const ALL: [$name; [$($name::$v),+].len()] = [$($name::$v),+];
            /// Number of variants: the length of per-variant counter arrays.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name, used as the Prometheus label value.
            #[must_use]
            pub const fn label(self) -> &'static str {
                match self { $($name::$v => $label,)+ }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

labelled_enum! {
    /// What was done to a frame that is transmitted.
    pub enum Action {
        /// Pod -> pod on this node (or native uplink -> pod): L2 rewritten, TTL - 1.
        DeliveredLocal => "delivered_local",
        /// Pod -> remote node, tunnel mode: VXLAN outer header prepended.
        Encapsulated => "encapsulated",
        /// VXLAN from the uplink: outer header stripped, delivered to a local pod.
        Decapsulated => "decapsulated",
        /// Pod -> remote node, native mode: L2 rewritten to the next hop, TTL - 1.
        RoutedNative => "routed_native",
        /// Too big with DF set: turned into ICMP fragmentation-needed back to the sender.
        IcmpFragNeeded => "icmp_frag_needed",
    }
}

labelled_enum! {
    /// Why a frame was dropped. One table for counters and logs.
    pub enum DropReason {
        /// TTL <= 1 on a frame podfwd would route.
        TtlExpired => "ttl_expired",
        /// Shorter than an Ethernet header (or a VLAN-tagged one).
        MalformedEthernet => "malformed_ethernet",
        /// IPv4 with a bad version, IHL, total length or header checksum.
        MalformedIpv4 => "malformed_ipv4",
        /// IPv4 options from a pod (podfwd forwards option-less headers only).
        IpOptions => "ip_options",
        /// An IPv4 fragment from a pod, or an outer VXLAN fragment (no reassembly).
        Fragment => "fragment",
        /// An 802.1Q/802.1ad tagged frame.
        VlanTagged => "vlan_tagged",
        /// A decapsulated inner frame that is not IPv4.
        NotIpv4 => "not_ipv4",
        /// No route to the destination inside the cluster CIDR.
        NoRoute => "no_route",
        /// Next-hop MAC (native), outer header (tunnel) or pod MAC unknown.
        NoNeighbour => "no_neighbour",
        /// VXLAN header short or without the I flag.
        BadVxlan => "bad_vxlan",
        /// VXLAN VNI is not ours.
        WrongVni => "wrong_vni",
        /// UDP to our node IP on a port other than our VXLAN port.
        WrongPort => "wrong_port",
        /// Decapsulated inner frame shorter than Ethernet + IPv4 (34 bytes).
        InnerTooShort => "inner_too_short",
        /// Too big for the egress MTU without DF (podfwd does not fragment), or with
        /// DF where no ICMP can be sent back (decapsulated frames).
        FrameTooBig => "frame_too_big",
        /// Not enough headroom in the UMEM chunk to prepend the outer header.
        NoHeadroom => "no_headroom",
        /// Would leave on the port it came in on (pod to itself, VXLAN for another node).
        Hairpin => "hairpin",
        /// Broadcast or multicast destination (MAC group bit, 224.0.0.0/4, 255.255.255.255).
        BroadcastMulticast => "broadcast_multicast",
        /// A pod sent with a source IP other than its own (anti-spoofing).
        MartianSource => "martian_source",
        /// The TX ring was full (counted by the worker through `Pipeline::record_drop`).
        TxRingFull => "tx_ring_full",
        /// The snapshot sends to a port this worker has no socket for (yet, or any more).
        NoTxSocket => "no_tx_socket",
        /// A multi-buffer descriptor chain that was not a whole frame (unfinished, or
        /// longer than a frame can be); counted once per chain by the worker through
        /// `Pipeline::drop_bad_chain`.
        BadChain => "bad_chain",
    }
}

/// The decision for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit `buf[off..off + len]` (as rewritten) on `port`.
    Tx { port: PortId, action: Action },
    /// Drop, counted under the reason.
    Drop(DropReason),
    /// Not podfwd's (non-IPv4 from a pod, traffic for the node itself or outside the
    /// cluster): the worker counts it as passed to the kernel and recycles the frame.
    Pass,
}
