#!/usr/bin/env bash
# Packaging checks (issue 7), as root on a Debian bookworm amd64 machine:
#   1. make deb: the three .deb files (arm64, armhf, amd64);
#   2. their binaries (architecture, cgo, glibc floor) and contents, modes,
#      conffiles and maintainer scripts;
#   3. systemd-analyze verify and security of the unit;
#   4. a Debian bookworm arm64 root (debootstrap, from the mirror in this
#      machine's apt sources or DEBIAN_MIRROR) run under qemu-user-static
#      through binfmt_misc (mounted and registered here when missing):
#      install, owners and modes, portier version and check-config (as root
#      and as the service user), reinstall, an upgrade to a second build that
#      keeps a modified config and the database, remove and purge;
#   5. the hal/sim smoke test with the arm64 binary in that root;
#   6. that root booted with systemd (systemd-nspawn): the packaged unit runs
#      (check-config as ExecStartPre, notify readiness, watchdog, stop).
# Installs its own apt packages; idempotent (each run starts from a fresh
# copy of the base root). Locally the debootstrap downloads and the base
# root are cached under .portier/ (gitignored); CI starts clean.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

work=${PORTIER_PACKAGING_WORK:-$repo/.portier/packaging}
cache=${PORTIER_DEBOOTSTRAP_CACHE:-$repo/.portier/debootstrap-cache}
suite=bookworm
base=$work/rootfs-base # debootstrap result, reused while its marker exists
root=$work/rootfs      # a fresh copy of base for each run
started=$SECONDS

step() { echo "== [$((SECONDS - started))s] $*"; }
die() {
	echo "packaging: FAIL: $*" >&2
	exit 1
}
# expect DESCRIPTION ACTUAL WANT: equality with a clear message.
expect() {
	if [ "$2" != "$3" ]; then
		die "$1: got '$2', want '$3'"
	fi
	case "$3" in
	*$'\n'*) echo "   ok: $1 ($(echo "$3" | wc -l) lines)" ;;
	*) echo "   ok: $1 = $3" ;;
	esac
}
# contains DESCRIPTION TEXT NEEDLE
contains() {
	case "$2" in
	*"$3"*) echo "   ok: $1" ;;
	*) die "$1: '$3' not found in: $2" ;;
	esac
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, binfmt_misc)"

# debootstrap downloads from the Debian mirror this machine's apt uses (or
# DEBIAN_MIRROR): no mirror is named here, so the check runs wherever apt
# works. The parsing is checked first, for both source formats.
step "the Debian mirror from apt's sources"
.ci/apt-mirror-test.sh >/dev/null || die ".ci/apt-mirror-test.sh failed"
. .ci/apt-mirror.sh
mirror=$(apt_mirror "$suite") || die "no Debian mirror for $suite: set DEBIAN_MIRROR"
echo "   mirror: $mirror"

step "apt packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	make gcc git ca-certificates binutils \
	gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross \
	debootstrap qemu-user-static systemd systemd-container >/dev/null

# --- 1. build ---------------------------------------------------------------
step "make deb (arm64, armhf, amd64)"
rm -f dist/portier_*.deb
# The version stamped into the binary (portier version) is the Makefile's
# default; set here so the upgrade build can extend it.
ver1=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
make --no-print-directory deb VERSION="$ver1"
v1=$(dpkg-deb -f dist/portier_*_arm64.deb Version)
echo "   version $ver1, package version $v1"

# --- 2. static checks -------------------------------------------------------
check_binary() { # ARCH MACHINE
	local arch=$1 machine=$2 bin=dist/$1/portier
	local got
	got=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
	expect "$arch binary machine" "$got" "$machine"
	# A cgo build links glibc dynamically; a silent no-cgo build would not.
	readelf -d "$bin" | grep -q 'NEEDED.*libc.so.6' || die "$arch binary does not link libc: was it built without cgo?"
	go version -m "$bin" | grep -q 'CGO_ENABLED=1' || die "$arch binary was not built with CGO_ENABLED=1"
	# The glibc floor documented in docs/install.md: Debian/Raspberry Pi OS
	# bookworm (glibc 2.36). Print the newest symbol version it needs.
	local floor
	floor=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
	echo "   $arch needs $floor"
	[ "$(printf '%s\nGLIBC_2.36\n' "$floor" | sort -V | tail -1)" = GLIBC_2.36 ] ||
		die "$arch binary needs $floor, newer than bookworm's glibc 2.36 (docs/install.md promises bookworm)"
	if [ "$arch" = armhf ]; then
		readelf -h "$bin" | grep -q 'hard-float ABI' || die "armhf binary is not hard-float"
		readelf -A "$bin" | grep -q 'Tag_CPU_arch: v7' || die "armhf binary is not ARMv7"
	fi
}

check_deb() { # ARCH
	local arch=$1 deb
	deb=$(ls dist/portier_*_"$arch".deb)
	step "check $deb"
	expect "$arch Package" "$(dpkg-deb -f "$deb" Package)" portier
	expect "$arch Architecture" "$(dpkg-deb -f "$deb" Architecture)" "$arch"
	expect "$arch Version" "$(dpkg-deb -f "$deb" Version)" "$v1"
	expect "$arch Depends" "$(dpkg-deb -f "$deb" Depends)" systemd
	# Every file with its mode and owner, and nothing else.
	local listing want
	listing=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sort)
	want=$(
		sort <<-'EOF'
			-rw-r----- root/root ./etc/portier/portier.yaml
			-rwxr-xr-x root/root ./usr/bin/portier
			-rw-r--r-- root/root ./usr/lib/systemd/system/portier.service
			-rw-r--r-- root/root ./usr/lib/sysusers.d/portier.conf
			-rw-r--r-- root/root ./usr/lib/udev/rules.d/60-portier.rules
			-rw-r--r-- root/root ./usr/share/doc/portier/copyright
			-rw-r--r-- root/root ./usr/share/doc/portier/portier.yaml.example
		EOF
	)
	expect "$arch contents" "$listing" "$want"
	local ctrl
	ctrl=$(mktemp -d)
	dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$ctrl"
	expect "$arch conffiles" "$(cat "$ctrl/conffiles")" /etc/portier/portier.yaml
	local s
	for s in postinst prerm postrm; do
		[ -f "$ctrl/$s" ] || die "$arch: no $s"
		expect "$arch $s mode" "$(stat -c %a "$ctrl/$s")" 755
		sh -n "$ctrl/$s" || die "$arch: $s is not valid sh"
		cmp -s "$ctrl/$s" "packaging/scripts/$s" || die "$arch: $s differs from packaging/scripts/$s"
		# Every systemctl call sits under the running-systemd guard, so
		# installs in chroots and image builders work.
		if grep -q systemctl "$ctrl/$s"; then
			awk '/\[ -d \/run\/systemd\/system \]/ {g=1} /^\tfi$/ {g=0} /systemctl/ && !g && !/^[ \t]*#/ {bad=1} END {exit bad}' "$ctrl/$s" ||
				die "$arch: $s calls systemctl outside the [ -d /run/systemd/system ] guard"
		fi
	done
	rm -rf "$ctrl"
	local data
	data=$(mktemp -d)
	dpkg-deb -x "$deb" "$data"
	cmp -s "$data/usr/bin/portier" "dist/$arch/portier" || die "$arch: packaged binary differs from dist/$arch/portier"
	cmp -s "$data/etc/portier/portier.yaml" packaging/portier.yaml || die "$arch: packaged config differs from packaging/portier.yaml"
	cmp -s "$data/usr/share/doc/portier/portier.yaml.example" packaging/portier.yaml || die "$arch: the example config differs from packaging/portier.yaml"
	rm -rf "$data"
}

check_binary arm64 AArch64
check_binary armhf ARM
check_binary amd64 "Advanced Micro Devices X86-64"
# Each one starts (arm64 is exercised fully in the root below).
contains "armhf binary runs" "$(qemu-arm-static -L /usr/arm-linux-gnueabihf dist/armhf/portier version)" "linux/arm)"
contains "amd64 binary runs" "$(dist/amd64/portier version)" "linux/amd64)"
for a in arm64 armhf amd64; do check_deb "$a"; done

# --- 3. the unit --------------------------------------------------------------
step "systemd-analyze verify and security"
unitdir=$(mktemp -d)
# verify wants ExecStart's binary to exist: point it at this machine's build.
sed "s#/usr/bin/portier#$repo/dist/amd64/portier#g" packaging/portier.service >"$unitdir/portier.service"
if ! out=$(systemd-analyze verify --man=no "$unitdir/portier.service" 2>&1); then
	die "systemd-analyze verify: $out"
fi
[ -z "$out" ] || die "systemd-analyze verify warns: $out"
echo "   ok: verify clean"
security=$(systemd-analyze security --offline=true --no-pager "$unitdir/portier.service" 2>&1 | tail -1)
echo "   $security"
case "$security" in
*" OK "* | *" SAFE "*) ;;
*) die "systemd-analyze security rates the unit worse than OK: $security" ;;
esac
rm -rf "$unitdir"

# --- 4. Debian bookworm arm64 root under qemu ---------------------------------
# Mounts inside the root are undone on exit, before anything deletes it.
cleanup_mounts() {
	local m
	awk -v r="$work/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" || true
	done
}
trap cleanup_mounts EXIT
# remove_tree DIR: delete a root only when nothing is mounted inside it.
remove_tree() {
	cleanup_mounts
	if awk -v r="$1/" 'index($2, r) == 1 {found=1} END {exit !found}' /proc/mounts; then
		die "refusing to delete $1: something is still mounted inside it"
	fi
	rm -rf "$1"
}

# How foreign binaries run: binfmt_misc hands every arm64 ELF to
# qemu-aarch64-static, so chroot works as on a Pi. It is required: running
# `chroot … qemu-aarch64-static /bin/sh` by hand is not enough, because dpkg
# and the maintainer scripts exec further arm64 programs, and proot -q qemu
# (the usual way around binfmt_misc) aborts in systemd-sysusers here
# (proot 5.1.0: path.c compare_paths2 assertion), which both debootstrap
# and our postinst run. Probe: an existing handler; else mount binfmt_misc
# if needed and register Debian's qemu-aarch64 handler (flag F: the
# interpreter is opened now, so the root needs no copy of it).
binfmt_ready() { # ROOT
	cp /usr/bin/qemu-aarch64-static "$1/usr/bin/" 2>/dev/null || true
	chroot "$1" /bin/true 2>/dev/null
}
setup_emulation() { # ROOT (with the target's /bin/true)
	if ! binfmt_ready "$1"; then
		if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
			mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
		fi
		if [ -w /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
			cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register 2>/dev/null || true
		fi
		binfmt_ready "$1" || die "cannot run arm64 programs: binfmt_misc is not available (mounting it or registering /usr/lib/binfmt.d/qemu-aarch64.conf failed: a container needs --privileged, or register qemu-aarch64 on its host with systemctl restart systemd-binfmt)"
	fi
	echo "   arm64 programs run via binfmt_misc: $(head -2 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | tr '\n' ' ')"
}

# in_root CMD…: run a command inside the root, with a clean environment.
in_root() {
	chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# as_portier CMD…: run a command inside the root as the service user, with
# its supplementary groups, the way the unit runs it.
as_portier() {
	in_root setpriv --reuid=portier --regid=portier --init-groups "$@"
}

mount_proc() { # ROOT: /proc for dpkg, systemd-sysusers and the Go runtime
	if ! grep -q " $1/proc " /proc/mounts; then
		mount -t proc proc "$1/proc"
	fi
}

mkdir -p "$work" "$cache"
if [ ! -e "$base/.portier-base-ok" ]; then
	step "debootstrap $suite arm64 (first stage) from $mirror"
	remove_tree "$base"
	debootstrap --arch=arm64 --variant=minbase --include=systemd --foreign \
		--cache-dir="$cache" "$suite" "$base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		die "debootstrap first stage failed, see $work/debootstrap.log"
	# In a container the first stage makes /proc a symlink to the host's;
	# the second stage wants a directory.
	if [ -L "$base/proc" ]; then
		rm "$base/proc"
		mkdir "$base/proc"
	fi
	setup_emulation "$base"
	step "debootstrap second stage (under qemu)"
	chroot "$base" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 ||
		die "debootstrap second stage failed, see $work/debootstrap.log"
	cleanup_mounts
	touch "$base/.portier-base-ok"
fi

step "fresh root from the base"
remove_tree "$root"
cp -a "$base" "$root"
setup_emulation "$root"
mount_proc "$root"
[ ! -d "$root/run/systemd/system" ] || die "the root has /run/systemd/system: the chroot-safety check would not test anything"
expect "root architecture" "$(in_root dpkg --print-architecture)" arm64

deb1=$(ls dist/portier_*_arm64.deb)
cp "$deb1" "$root/tmp/portier-1.deb"

step "install $deb1 in the root"
in_root dpkg -i /tmp/portier-1.deb </dev/null || die "dpkg -i failed in the arm64 root"
# shellcheck disable=SC2016 # dpkg-query's format, not shell
expect "package status" "$(in_root dpkg-query -W -f '${Status} ${Version}' portier)" "install ok installed $v1"

check_installed() {
	local passwd
	passwd=$(in_root getent passwd portier) || die "no portier user"
	expect "portier home and shell" "$(echo "$passwd" | cut -d: -f6,7)" "/var/lib/portier:/usr/sbin/nologin"
	[ "$(echo "$passwd" | cut -d: -f3)" -lt 1000 ] || die "portier is not a system user: $passwd"
	local groups g
	groups=" $(in_root id -nG portier) "
	for g in gpio spi i2c; do contains "portier in group $g" "$groups" " $g "; done
	expect "/var/lib/portier" "$(in_root stat -c '%U:%G %a' /var/lib/portier)" "portier:portier 750"
	expect "/var/lib/portier/pin.key" "$(in_root stat -c '%U:%G %a' /var/lib/portier/pin.key)" "portier:portier 600"
	grep -qE '^[0-9a-f]{64}$' "$root/var/lib/portier/pin.key" || die "pin.key is not 64 hex digits"
	expect "/etc/portier" "$(in_root stat -c '%U:%G %a' /etc/portier)" "root:root 755"
	expect "/etc/portier/portier.yaml" "$(in_root stat -c '%U:%G %a' /etc/portier/portier.yaml)" "root:portier 640"
	expect "/usr/bin/portier" "$(in_root stat -c '%U:%G %a' /usr/bin/portier)" "root:root 755"
	expect "unit" "$(in_root stat -c '%a' /usr/lib/systemd/system/portier.service)" 644
	expect "udev rules" "$(in_root stat -c '%a' /usr/lib/udev/rules.d/60-portier.rules)" 644
	[ ! -e "$root/etc/systemd/system/multi-user.target.wants/portier.service" ] ||
		die "the package enabled the unit: a fresh install must wait for the installer's config"
}
check_installed

step "portier version and check-config in the root"
out=$(in_root portier version)
contains "portier version" "$out" "portier $ver1 "
contains "portier version arch" "$out" "linux/arm64"
out=$(in_root portier check-config --config /etc/portier/portier.yaml) || die "check-config as root: $out"
contains "check-config as root" "$out" "/etc/portier/portier.yaml: OK"
# As the unit's ExecStartPre runs it: the service user reads the config and
# PIN key and can write the state dir.
out=$(as_portier portier check-config --config /etc/portier/portier.yaml 2>&1) || die "check-config as portier: $out"
contains "check-config as portier" "$out" "/etc/portier/portier.yaml: OK"
in_root systemd-analyze verify --man=no /usr/lib/systemd/system/portier.service ||
	die "systemd-analyze verify in the root"
echo "   ok: systemd-analyze verify in the root"

step "reinstall (idempotent maintainer scripts)"
key1=$(sha256sum <"$root/var/lib/portier/pin.key")
in_root dpkg -i /tmp/portier-1.deb </dev/null || die "reinstall failed"
expect "pin key kept on reinstall" "$(sha256sum <"$root/var/lib/portier/pin.key")" "$key1"
check_installed

step "modify the config, fill the database"
sed -i 's/^gateway_id: gateway-1$/gateway_id: ci-modified/' "$root/etc/portier/portier.yaml"
grep -q '^gateway_id: ci-modified$' "$root/etc/portier/portier.yaml" || die "could not modify the config"
cp cmd/portier/defaults/demo-site.json "$root/tmp/demo-site.json"
chmod 0644 "$root/tmp/demo-site.json"
# The packaged door maps the placeholder lock; import works on any doors.
as_portier portier import --config /etc/portier/portier.yaml /tmp/demo-site.json >/dev/null ||
	die "import into the packaged database failed"
[ -s "$root/var/lib/portier/portier.db" ] || die "no database after import"
db1=$(sha256sum <"$root/var/lib/portier/portier.db")

step "upgrade to a second build"
cp dist/arm64/portier "$work/portier-arm64.v1"
make --no-print-directory deb CROSS_ARCHES=arm64 VERSION="$ver1-ci.upgrade" >/dev/null
# dist/ keeps the first build: the second one is only for this test.
cp "$work/portier-arm64.v1" dist/arm64/portier
deb2=$(ls dist/portier_*ci.upgrade-1_arm64.deb)
v2=$(dpkg-deb -f "$deb2" Version)
dpkg --compare-versions "$v2" gt "$v1" || die "second build $v2 does not sort after $v1"
cp "$deb2" "$root/tmp/portier-2.deb"
rm -f "$deb2"
in_root dpkg -i /tmp/portier-2.deb </dev/null || die "upgrade failed"
# shellcheck disable=SC2016
expect "upgraded version" "$(in_root dpkg-query -W -f '${Version}' portier)" "$v2"
contains "portier version after upgrade" "$(in_root portier version)" "portier $ver1-ci.upgrade "
grep -q '^gateway_id: ci-modified$' "$root/etc/portier/portier.yaml" || die "the upgrade replaced the modified config"
echo "   ok: modified config kept"
[ ! -e "$root/etc/portier/portier.yaml.dpkg-new" ] || die "the upgrade left portier.yaml.dpkg-new"
expect "pin key kept on upgrade" "$(sha256sum <"$root/var/lib/portier/pin.key")" "$key1"
expect "database kept on upgrade" "$(sha256sum <"$root/var/lib/portier/portier.db")" "$db1"
check_installed
out=$(as_portier portier check-config --config /etc/portier/portier.yaml 2>&1) || die "check-config after upgrade: $out"

# --- 5. hal/sim smoke test with the arm64 binary ------------------------------
# The embedded demo config (simulated board) with its state in a scratch
# dir, run as the service user the way the gateway would run it.
as_smoke() { # CMD…: run as the service user with the smoke test's state dir
	in_root setpriv --reuid=portier --regid=portier --init-groups \
		env STATE_DIRECTORY=/var/tmp/portier-smoke "$@"
}
smoke() { # CMD…: one step of the smoke test; prints its output on failure
	local out
	if ! out=$(as_smoke "$@" 2>&1); then
		die "smoke: $*: $out"
	fi
	echo "   ok: $*"
	smoke_out=$out
}
step "hal/sim smoke test under qemu"
in_root install -d -o portier -g portier -m 0750 /var/tmp/portier-smoke
smoke portier import /tmp/demo-site.json
smoke portier check --door front --tag 02301234 --at 2026-11-24T10:00
contains "granted" "$smoke_out" "GRANTED  Ada Lovelace opens"
# A denial is exit status 1, not a failure of the command.
code=0
out=$(as_smoke portier check --door front --tag 02301236 2>&1) || code=$?
expect "portier check of the demo's denied tag exits" "$code" 1
contains "denied" "$out" "DENIED"
# The demo studio's OSDP reader is new: doctor fails it, with the fix, until
# it has a key of its own (what `portier reader install` stores; the
# simulated reader then answers to that key).
code=0
out=$(as_smoke portier doctor 2>&1) || code=$?
expect "portier doctor before the OSDP reader is installed exits" "$code" 3
contains "doctor names the reader install" "$out" "portier reader install --door studio"
in_root install -d -o portier -g portier -m 0700 /var/tmp/portier-smoke/osdp
printf '00112233445566778899AABBCCDDEEFF\n' >"$root/var/tmp/portier-smoke/osdp/studio.key"
in_root chown portier:portier /var/tmp/portier-smoke/osdp/studio.key
in_root chmod 0600 /var/tmp/portier-smoke/osdp/studio.key
smoke portier doctor
contains "doctor" "$smoke_out" "checks passed"
contains "doctor's secure channel" "$smoke_out" "secure channel established (AES-128)"

# --- remove and purge ------------------------------------------------------------
step "remove keeps config and state; purge deletes them"
in_root dpkg -r portier </dev/null || die "dpkg -r failed"
[ -f "$root/etc/portier/portier.yaml" ] || die "remove deleted the config"
[ -f "$root/var/lib/portier/pin.key" ] || die "remove deleted the PIN key"
[ ! -e "$root/usr/bin/portier" ] || die "remove left the binary"
in_root dpkg -P portier </dev/null || die "dpkg -P failed"
[ ! -e "$root/etc/portier" ] || die "purge left /etc/portier"
[ ! -e "$root/var/lib/portier" ] || die "purge left /var/lib/portier"
in_root getent passwd portier >/dev/null || die "purge removed the portier user (Debian keeps system users)"
echo "   ok"

# --- maintainer scripts with systemd running ----------------------------------
# A chroot has no running systemd, so the branch above skipped systemctl.
# Pretend it runs (/run/systemd/system) with systemctl and udevadm stubs that
# log their arguments, and check what each step asks of systemd.
step "maintainer scripts when systemd runs (stubbed systemctl, udevadm)"
mkdir -p "$root/run/systemd/system" "$root/usr/local/sbin"
for tool in systemctl udevadm; do
	printf '#!/bin/sh
echo "%s $*" >>/tmp/systemd-calls
' "$tool" >"$root/usr/local/sbin/$tool"
	chmod 0755 "$root/usr/local/sbin/$tool"
done
calls() { # DPKG-ARGS…: run dpkg, print the stubbed calls it made
	rm -f "$root/tmp/systemd-calls"
	chroot "$root" env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null >/dev/null || die "dpkg $* failed with systemd running"
	tr '\n' ';' <"$root/tmp/systemd-calls" 2>/dev/null || true
}
udev='udevadm control --reload-rules;udevadm trigger --action=change --subsystem-match=gpio --subsystem-match=spidev --subsystem-match=i2c-dev --subsystem-match=usb-serial;'
expect "fresh install: reload only, nothing enabled or started" "$(calls -i /tmp/portier-1.deb)" "${udev}systemctl daemon-reload;"
expect "upgrade: restart a running agent" "$(calls -i /tmp/portier-2.deb)" "${udev}systemctl daemon-reload;systemctl try-restart portier.service;"
expect "remove: stop, reload" "$(calls -r portier)" "systemctl stop portier.service;systemctl daemon-reload;"
expect "purge: reload" "$(calls -P portier)" "systemctl daemon-reload;"
rm -rf "$root/run/systemd/system" "$root/usr/local/sbin/systemctl" "$root/usr/local/sbin/udevadm"

# --- 6. the unit under a running systemd ---------------------------------------
# Boot the arm64 root with systemd as PID 1 (systemd-nspawn, qemu through
# binfmt_misc) and let systemd run the packaged unit with the packaged config
# switched to driver sim: ExecStartPre=check-config as portier inside the
# sandbox, Type=notify readiness, the watchdog (shortened to 2s by a drop-in
# so a few intervals pass quickly), then a clean stop at poweroff. A probe
# unit records what systemd saw and powers the container off.
step "the unit under systemd (systemd-nspawn, arm64 under qemu)"
remove_tree "$root"
cp -a "$base" "$root"
cp "$deb1" "$root/tmp/portier-1.deb"
mount_proc "$root"
in_root dpkg -i /tmp/portier-1.deb </dev/null >/dev/null || die "install for the boot test failed"
cleanup_mounts
sed -i 's/^  driver: periph$/  driver: sim/' "$root/etc/portier/portier.yaml"
grep -q '^  driver: sim$' "$root/etc/portier/portier.yaml" || die "could not switch the template to driver sim"
ln -s /usr/lib/systemd/system/portier.service "$root/etc/systemd/system/multi-user.target.wants/portier.service"
mkdir -p "$root/etc/systemd/system/portier.service.d"
printf '[Service]\nWatchdogSec=2s\n' >"$root/etc/systemd/system/portier.service.d/ci-watchdog.conf"
printf '%s\n' '[Unit]' 'After=portier.service' '[Service]' 'Type=oneshot' \
	"ExecStart=/bin/sh -c 'sleep 8; systemctl show portier -p ActiveState -p SubState -p NRestarts -p StatusText -p WatchdogUSec >/root/probe.txt; journalctl -u portier --no-pager >/root/journal.txt; systemctl poweroff'" \
	'[Install]' 'WantedBy=multi-user.target' >"$root/etc/systemd/system/ci-probe.service"
ln -s /etc/systemd/system/ci-probe.service "$root/etc/systemd/system/multi-user.target.wants/ci-probe.service"
timeout 300 systemd-nspawn -D "$root" --register=no --keep-unit -q -b >"$work/nspawn.log" 2>&1 ||
	die "the container did not boot and power off cleanly, see $work/nspawn.log"
[ -f "$root/root/probe.txt" ] || die "the probe did not run, see $work/nspawn.log"
probe=$(tr '\n' ' ' <"$root/root/probe.txt")
contains "portier.service active" "$probe" "ActiveState=active"
contains "portier.service running" "$probe" "SubState=running"
contains "no restarts (readiness and watchdog pings arrived)" "$probe" "NRestarts=0"
contains "watchdog armed" "$probe" "WatchdogUSec=2s"
contains "status text from sd_notify" "$probe" "StatusText=deciding locally for front"
journal=$(cat "$root/root/journal.txt")
contains "ExecStartPre check-config as portier" "$journal" "/etc/portier/portier.yaml: OK"
contains "agent started" "$journal" "Started portier.service"
sed 's/\x1b\[[0-9;]*m//g' "$work/nspawn.log" | grep -q "Stopped portier.service" || die "portier.service did not stop cleanly at poweroff, see $work/nspawn.log"
echo "   ok: stopped cleanly at poweroff"

cleanup_mounts
step "packaging checks passed in $((SECONDS - started))s"
