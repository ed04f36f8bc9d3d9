//! Compiles `xdp-prog/podfwd.bpf.c` with clang (through libbpf-cargo) into
//! `OUT_DIR/podfwd.bpf.o`, which the crate embeds. No skeleton is generated: it would
//! be `unsafe` code outside the xsk crate, and the crate opens the object by name. The program uses only UAPI headers (no vmlinux.h /
//! CO-RE); Debian keeps `asm/types.h` under the multiarch include directory,
//! so it is added explicitly.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "../../xdp-prog/podfwd.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let obj = out.join("podfwd.bpf.o");

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        other => other,
    };

    SkeletonBuilder::new()
        .source(SRC)
        .obj(&obj)
        .clang_args([
            format!("-I/usr/include/{multiarch}"),
            "-Wall".to_string(),
            "-Werror".to_string(),
        ])
        .build()
        .unwrap_or_else(|e| {
            panic!(
                "building {SRC} failed (needs clang and libbpf-dev / linux-libc-dev headers): {e:#}"
            )
        });

    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=build.rs");
}
