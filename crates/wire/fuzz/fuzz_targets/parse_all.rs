//! Every checked constructor and getter of `wire` over arbitrary bytes: must not panic.
//! `cargo +nightly fuzz run parse_all` from crates/wire.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../../tests/common/parse_all.rs");

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(parse_all(data));
});
