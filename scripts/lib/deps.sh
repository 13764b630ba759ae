# Installs, once and idempotently, every Debian 12 package the project needs
# to build, test and demo. Sourced by scripts/test.sh and scripts/demo.sh.

VUISO_PACKAGES=(
    meson ninja-build pkg-config g++ python3
    libdpdk-dev dpdk dpdk-dev          # DPDK 22.11, dpdk-testpmd, dpdk-telemetry.py
    libspdlog-dev libfmt-dev libnuma-dev libgtest-dev
    nlohmann-json3-dev                 # the control socket, config files; tests
    libsystemd-dev                     # sd_notify (the unit is Type=notify)
    qemu-system-x86 qemu-utils         # qemu-storage-daemon, qemu-system-x86_64
    clang-format clang libclang-rt-14-dev   # lint; libFuzzer targets (tests/fuzz)
    cpio                               # packs the test guest's initramfs
    openvswitch-switch-dpdk            # tests: dpdk-vuiso as an OVS-DPDK sidecar
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils  # tests: libvirt
    systemd                            # tests: systemd-analyze verify of the unit
)

install_deps() {
    local missing=()
    for p in "${VUISO_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing packages and not root; install them: ${missing[*]}" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || return 1
    # Packages with system services (openvswitch-switch) must not start
    # them: the tests run their own daemons, the system's are left alone.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    local rc=$?
    [ $own_policy = 1 ] && rm -f $policy
    return $rc
}

# Configures (or reconfigures) and builds the tree in $1 with extra meson args.
build_tree() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null || return 1
    else
        meson setup "$dir" "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" || return 1
}
