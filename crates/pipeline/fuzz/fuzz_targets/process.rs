//! Arbitrary bytes as a frame from a pod port and from the uplink, against the fixed
//! two-node snapshot of tests/common, in tunnel, native and hybrid mode, whole and as the
//! first buffer of a descriptor chain. Must not panic; Tx
//! ports must exist; off/len must stay within the chunk; dropped or passed frames must
//! be left untouched. `cargo +nightly fuzz run process` from crates/pipeline.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pipeline::{Frame, Pipeline, Verdict};
use route::{Mode, Snapshot};

static SNAPS: OnceLock<[Snapshot; 3]> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let snaps = SNAPS.get_or_init(|| {
        [
            common::snapshot(Mode::Tunnel),
            common::snapshot(Mode::Native),
            common::hybrid_snapshot(),
        ]
    });
    // First byte: headroom (0..=254 in steps of 2, so encap sometimes lacks room) and,
    // in its top bit, whether to fix up the IPv4 header checksums of the frame and of a
    // VXLAN inner frame, so that mutations get past checksum verification into the
    // decisions behind it. The rest: the frame.
    let Some((&sel, raw)) = data.split_first() else {
        return;
    };
    let off = usize::from(sel & 0x7f) * 2;
    let mut owned = raw.to_vec();
    if sel & 0x80 != 0 {
        for at in [14, 14 + wire::VXLAN_OVERHEAD] {
            if let Some(b) = owned.get_mut(at..) {
                if let Ok(mut ip) = wire::Ipv4Packet::new_checked(b) {
                    ip.fill_checksum();
                }
            }
        }
    }
    let bytes = &owned[..];
    let mut pl = Pipeline::new();
    // Whole, and as a descriptor chain whose first buffer holds the first three quarters
    // (the pipeline sees that buffer and the length of the rest).
    let head = bytes.len() - bytes.len() / 4;
    for snap in snaps {
        for port in [common::UPLINK, common::LXC1, common::LXC3, 9] {
            for (len, more) in [(bytes.len(), 0), (head, bytes.len() - head)] {
                let mut chunk = common::chunk_at(&bytes[..len], off);
                let n = chunk.len();
                let mut f = Frame::chained(&mut chunk, off, len, more);
                let v = pl.process(snap, port, &mut f);
                assert!(f.off <= n && f.len <= n - f.off);
                match v {
                    Verdict::Tx { port, .. } => {
                        assert!(usize::from(port) < snap.ports.len());
                        // The rest of a chain goes as it came, or not at all.
                        assert!(f.more == more || f.more == 0);
                    }
                    _ => assert_eq!((f.off, f.data(), f.more), (off, &bytes[..len], more)),
                }
            }
        }
    }
    assert_eq!(pl.counters().frames(), 8 * snaps.len() as u64);
});
