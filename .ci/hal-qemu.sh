#!/usr/bin/env bash
# Run the hal packages' tests for arm64 and armv7 under qemu-user, the way a
# Raspberry Pi would run them. Installs nothing; the caller provides:
#   qemu-user                                     (qemu-aarch64, qemu-arm)
#   libc6-dev-arm64-cross libc6-dev-armhf-cross   (/usr/aarch64-linux-gnu, /usr/arm-linux-gnueabihf for -L)
#   gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf (only if a hal package ever needs cgo; today none does)
# No binfmt_misc registration is needed: go test -exec runs each test binary
# through qemu directly. -race is not available under this setup (linux/arm
# has none); run -race natively on amd64.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=${HAL_PKGS:-./hal/...}
status=0

run() { # GOARCH GOARM qemu sysroot
	local arch=$1 arm=$2 qemu=$3 root=$4
	if ! command -v "$qemu" >/dev/null; then
		echo "hal-qemu: $qemu not found: apt-get install qemu-user" >&2
		return 1
	fi
	local exec="$qemu"
	if [ -d "$root" ]; then
		exec="$qemu -L $root"
	fi
	echo "== hal tests on linux/$arch${arm:+ GOARM=$arm} via $exec"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=$arm \
		go test -count=1 -exec "$exec" "$pkgs"
}

run arm64 "" qemu-aarch64 /usr/aarch64-linux-gnu || status=1
run arm 7 qemu-arm /usr/arm-linux-gnueabihf || status=1
exit $status
