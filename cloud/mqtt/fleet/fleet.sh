#!/usr/bin/env bash
# The fleet harness (docs/fleet.md): `make fleet` runs the full variant,
# `make fleet-ci` the small one CI runs. It installs RabbitMQ when it is
# missing and the user is root (else it says how), then runs the Go harness
# (package cloud/mqtt/fleet, build tag fleet), which starts a three-node
# cluster with cluster.sh, and prints the figures as name=value.
#
# Knobs (environment): FLEET_GATEWAYS, FLEET_PROCESSES, FLEET_BURST,
# FLEET_RATE, FLEET_FAULTS (see fleet_test.go), FLEET_PORT_BASE (the
# cluster's ports, default 27400..27449), FLEET_CLUSTER (use a cluster
# `cluster.sh up DIR` started instead of a new one).
set -euo pipefail
cd "$(dirname "$0")"
variant=${1:-full}
sbin=${RABBITMQ_SBIN:-/usr/lib/rabbitmq/bin}

if [ ! -x "$sbin/rabbitmq-server" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "fleet: installing rabbitmq-server (Debian's package; it brings Erlang)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null; }
		# The package may start a system broker; the harness runs its own nodes.
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl stop rabbitmq-server || true; fi
	else
		echo "fleet: RabbitMQ is not installed. Install it, then run this again: sudo apt-get install rabbitmq-server" >&2
		exit 1
	fi
fi

# full: the probes of RabbitMQ's semantics, then the fleet with every
# fault; ci: the fleet only, small, one node kill and one cluster restart.
case $variant in
full)
	export FLEET_GATEWAYS=${FLEET_GATEWAYS:-200} FLEET_PROCESSES=${FLEET_PROCESSES:-4} FLEET_FAULTS=${FLEET_FAULTS:-all}
	tests='TestRabbitMQ|TestFleet'
	;;
ci)
	export FLEET_GATEWAYS=${FLEET_GATEWAYS:-20} FLEET_PROCESSES=${FLEET_PROCESSES:-1} FLEET_FAULTS=${FLEET_FAULTS:-ci} FLEET_BURST=${FLEET_BURST:-50}
	tests='TestFleet'
	;;
*)
	echo "usage: fleet.sh [full|ci]" >&2
	exit 2
	;;
esac

# The cluster lives in a directory of its own, stopped here whatever the
# test did (a panic skips the test's own cleanup) and removed if it passed.
out=$(mktemp)
export FLEET_CLUSTER_DIR
FLEET_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/portier-fleet-XXXXXX")
trap 'rm -f "$out"; [ ! -d "$FLEET_CLUSTER_DIR" ] || ./cluster.sh down "$FLEET_CLUSTER_DIR" || true' EXIT
set +e
${GO:-go} test -tags 'fleet sqlite_omit_load_extension' -count=1 -v -timeout 45m -run "$tests" . 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
./cluster.sh down "$FLEET_CLUSTER_DIR" || true
if [ "$rc" = 0 ]; then rm -rf "$FLEET_CLUSTER_DIR"; else echo "fleet: RabbitMQ data and logs kept in $FLEET_CLUSTER_DIR"; fi
echo "== fleet figures ($variant)"
grep -E '^fleet_[a-z0-9_]+=' "$out" || true
exit "$rc"
