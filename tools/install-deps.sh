#!/usr/bin/env bash
# Installs everything relay needs to build, test, demo and bench, from Debian packages only.
# Idempotent: a second run installs nothing and takes a second or two.
# Usage: tools/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

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
	# bench: instruction counts
	valgrind
)

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
