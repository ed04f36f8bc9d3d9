# Shared helpers for podfwd's scripts. Sourced, not run.
# shellcheck shell=bash

PODFWD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PODFWD_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build, the tests and the demo need: every tool a script or test
# runs (python3: bench/compare, scripts/soak, the bpf and podfwd namespace tests; jq:
# scripts/soak; netsniff-ng: trafgen;
# prometheus: promtool; iproute2: ip, ss; procps: sysctl, free; util-linux: mountpoint;
# containernetworking-plugins: host-local in /usr/lib/cni for the podfwd-cni tests;
# systemd: systemd-analyze for the unit check in crates/podfwd/tests/deploy.rs;
# bird2: BGP in the routed bed, scripts/topology-routed;
# containerd, runc, busybox-static: real containers in crates/podfwd/tests/containerd.rs).
PODFWD_APT_PACKAGES=(clang llvm libelf-dev zlib1g-dev pkg-config m4 libbpf-dev bpftool
    iproute2 ethtool iputils-ping iputils-arping iperf3 netsniff-ng sockperf tshark
    prometheus curl procps python3 jq util-linux containernetworking-plugins systemd bird2
    containerd runc busybox-static)

need_root() {
    [ "$(id -u)" = 0 ] || die "podfwd's setup and namespace tests need root (network namespaces, XDP, AF_XDP)"
}

# Install what is missing, idempotently: apt packages, rustup components, bpffs.
ensure_deps() {
    need_root
    local missing=()
    for p in "${PODFWD_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # tshark asks whether non-root users may capture; answer no without a prompt.
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if command -v rustup >/dev/null; then
        for c in clippy rustfmt; do
            rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
        done
    fi
    if ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
        mkdir -p /sys/fs/bpf
        mount -t bpf bpf /sys/fs/bpf || log "warning: could not mount bpffs on /sys/fs/bpf (podfwd attaches through bpf_links and does not need it)"
    fi
}

build_release() {
    log "building podfwd (release)"
    # --locked only: a Cargo.lock that does not match Cargo.toml is an error to fix, not
    # something to paper over by resolving again.
    (cd "$PODFWD_ROOT" && cargo build --release --locked -q -p podfwd)
    PODFWD_BIN="$PODFWD_ROOT/target/release/podfwd"
    export PODFWD_BIN
}
