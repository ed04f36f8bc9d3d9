//! `podfwd-cni`: installed as the CNI plugin `podfwd` (the binary a conflist's
//! `"type": "podfwd"` names). See docs/cni.md.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(podfwd_cni::plugin::run());
}
