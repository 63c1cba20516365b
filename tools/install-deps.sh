#!/usr/bin/env bash
# Installs everything relay needs to build, test, demo and bench, from Debian packages only.
# Idempotent: a second run installs nothing and takes a second or two.
# Usage: tools/install-deps.sh [--with-dht]   (as root, or with sudo available)
#   --with-dht  also OpenDHT and a C++ compiler, for `meson setup -Ddht=enabled` (12 packages and
#               159 MB on a machine with the rest, mostly Boost headers). OpenDHT is GPL-3+: a
#               relay-control built with it is GPL-3+ (control/README.md).
set -euo pipefail
WITH_DHT=0
for a in "$@"; do
	case "$a" in
	--with-dht) WITH_DHT=1 ;;
	*) echo "install-deps: unknown option '$a' (--with-dht)" >&2; exit 2 ;;
	esac
done

PKGS=(
	# build
	gcc make meson ninja-build pkg-config
	# dataplane: DPDK 22.11 (dpdk-dev carries dpdk-testpmd, used by bench/)
	dpdk dpdk-dev libdpdk-dev
	# libraries relay links
	liburcu-dev libsodium-dev libjemalloc-dev
	# tests: Criterion; python3 reads the JSON the tools print; clang + its runtime for libFuzzer
	libcriterion-dev python3 clang-14 libclang-rt-14-dev
	# demo + integration tests: network namespaces, veth; tshark captures the veth to show that
	# encrypted streams cross it without plaintext
	iproute2 procps ethtool tshark
	# loss tests: random packet loss in a namespace (tc netem where the kernel has it, else
	# nftables numgen: this VM's kernel has no CONFIG_NET_SCH_NETEM)
	nftables
	# bench: instruction counts
	valgrind
)
[ $WITH_DHT -eq 1 ] && PKGS+=(g++ libopendht-c-dev)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
