#!/usr/bin/env bash
# A RabbitMQ cluster on loopback for the fleet harness (docs/fleet.md):
# FLEET_NODES nodes (default 3), each with its own node name, ports, data
# and log directories under DIR, one shared Erlang cookie, the MQTT plugin
# enabled offline, joined with `rabbitmqctl join_cluster`.
#
#   cluster.sh up DIR          create and start the cluster; print its MQTT URLs
#   cluster.sh kill DIR N...   SIGKILL nodes (a crash: nothing is flushed)
#   cluster.sh stop DIR N...   stop nodes gracefully
#   cluster.sh start DIR N...  start stopped or killed nodes and wait until they serve
#   cluster.sh ctl DIR N ARGS  run rabbitmqctl against node N
#   cluster.sh down DIR        kill every node and epmd
#   cluster.sh urls DIR        print the MQTT URLs, one per node
#
# Ports: FLEET_PORT_BASE (default 27400, below Linux's ephemeral range so
# nothing that asks for a free port gets one of them) is epmd's port; node
# N listens for AMQP on base+10N, Erlang distribution on base+10N+1, MQTT on
# base+10N+2; the CLI tools take base+40..base+49. Everything binds to
# 127.0.0.1.
#
# Durable settings, per node (rabbitmq.conf below): retained messages in
# the default on-disk store (dets), which is per node in RabbitMQ 3.x; the
# MQTT plugin publishes QoS 1 messages as persistent and acknowledges them
# (PUBACK) only once every queue they were routed to confirmed them, so a
# quorum queue (replicated, fsynced) holds what the fleet consumer reads.
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: cluster.sh up|kill|stop|start|ctl|down|urls DIR [N...]"
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
base=${FLEET_PORT_BASE:-27400}
nodes=${FLEET_NODES:-3}
sbin=${RABBITMQ_SBIN:-/usr/lib/rabbitmq/bin}
[ -x "$sbin/rabbitmq-server" ] || die "RabbitMQ is not installed ($sbin/rabbitmq-server): apt-get install rabbitmq-server"
command -v epmd >/dev/null || die "epmd (Erlang) not found: apt-get install rabbitmq-server"

# Environment of node $1 for the server and the CLI tools.
node_env() {
	local i=$1 nd="$dir/node$1"
	export HOME="$dir" # the shared Erlang cookie: $dir/.erlang.cookie
	export ERL_EPMD_PORT=$base ERL_EPMD_ADDRESS=127.0.0.1
	export RABBITMQ_NODENAME="fleet$i@localhost"
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	export RABBITMQ_NODE_PORT=$((base + 10 * i)) RABBITMQ_DIST_PORT=$((base + 10 * i + 1))
	export RABBITMQ_CTL_DIST_PORT_MIN=$((base + 40)) RABBITMQ_CTL_DIST_PORT_MAX=$((base + 49))
	export RABBITMQ_MNESIA_BASE="$nd/mnesia" RABBITMQ_LOG_BASE="$nd/log"
	export RABBITMQ_CONFIG_FILE="$nd/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$nd/advanced.config"
	export RABBITMQ_ENABLED_PLUGINS_FILE="$nd/enabled_plugins" RABBITMQ_PLUGINS_EXPAND_DIR="$nd/plugins-expand"
	export RABBITMQ_PID_FILE="$nd/pid" RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
	export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
	export RABBITMQ_LOGS="$nd/log/node.log"
	# Crash dumps (erl_crash.dump, MnesiaCore.*) land in the node's directory,
	# never in the caller's working directory.
	export ERL_CRASH_DUMP="$nd/erl_crash.dump"
}

ctl() { (node_env "$1"; cd "$dir/node$1"; shift; "$sbin/rabbitmqctl" "$@"); }

mqtt_url() { echo "tcp://127.0.0.1:$((base + 10 * $1 + 2))"; }

urls() { for i in $(seq 1 "$nodes"); do mqtt_url "$i"; done; }

start_epmd() {
	if [ -f "$dir/epmd.pid" ] && kill -0 "$(cat "$dir/epmd.pid")" 2>/dev/null; then return; fi
	(cd "$dir" && exec setsid epmd -port "$base" -address 127.0.0.1 >"$dir/epmd.log" 2>&1) &
	echo $! >"$dir/epmd.pid"
}

# start_node N: start node N in its own process group (so kill takes the
# whole VM) without waiting.
start_node() {
	local i=$1 nd="$dir/node$1"
	if [ -f "$nd/pgid" ] && kill -0 -- "-$(cat "$nd/pgid")" 2>/dev/null; then return; fi
	rm -f "$nd/pid"
	(node_env "$i"; cd "$nd"; exec setsid "$sbin/rabbitmq-server" >>"$nd/stdout.log" 2>&1) &
	echo $! >"$nd/pgid"
}

wait_node() {
	{ ctl "$1" wait "$dir/node$1/pid" --timeout 240 && ctl "$1" await_startup --timeout 240; } >/dev/null || {
		tail -n 40 "$dir/node$1/log/node.log" >&2 2>/dev/null || true
		die "node $1 did not start"
	}
}

kill_node() {
	local nd="$dir/node$1"
	[ -f "$nd/pgid" ] || return 0
	kill -KILL -- "-$(cat "$nd/pgid")" 2>/dev/null || true
	while kill -0 -- "-$(cat "$nd/pgid")" 2>/dev/null; do sleep 0.1; done
	rm -f "$nd/pgid"
}

stop_node() {
	local nd="$dir/node$1"
	[ -f "$nd/pgid" ] || return 0
	ctl "$1" stop >/dev/null 2>&1 || true
	while kill -0 -- "-$(cat "$nd/pgid")" 2>/dev/null; do sleep 0.1; done
	rm -f "$nd/pgid"
}

# ports_free fails when something listens on the cluster's ports already
# (a cluster left running, or another program): starting would fail later
# and less clearly.
ports_free() {
	local p
	for p in "$base" $(for i in $(seq 1 "$nodes"); do echo $((base + 10 * i)) $((base + 10 * i + 1)) $((base + 10 * i + 2)); done); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			die "port $p is in use: a cluster left running (cluster.sh down DIR) or another program; choose other ports with FLEET_PORT_BASE"
		fi
	done
}

up() {
	[ ! -e "$dir/node1" ] || die "$dir already holds a cluster: cluster.sh down $dir, then remove it"
	ports_free
	head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/.erlang.cookie"
	chmod 400 "$dir/.erlang.cookie"
	: >"$dir/rabbitmq-env.conf"
	for i in $(seq 1 "$nodes"); do
		local nd="$dir/node$i"
		mkdir -p "$nd/mnesia" "$nd/log"
		cat >"$nd/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$((base + 10 * i))
mqtt.listeners.tcp.default = 127.0.0.1:$((base + 10 * i + 2))
mqtt.allow_anonymous = true
mqtt.vhost = /
mqtt.exchange = amq.topic
mqtt.retained_message_store = rabbit_mqtt_retained_msg_store_dets
mqtt.retained_message_store_dets_sync_interval = 2000
mqtt.prefetch = 100
loopback_users = none
cluster_partition_handling = pause_minority
log.file.level = info
log.console = false
CONF
		(node_env "$i"; cd "$nd"; "$sbin/rabbitmq-plugins" --offline enable rabbitmq_mqtt >/dev/null)
	done
	start_epmd
	start_node 1
	wait_node 1
	for i in $(seq 2 "$nodes"); do start_node "$i"; done
	for i in $(seq 2 "$nodes"); do
		wait_node "$i"
		ctl "$i" stop_app >/dev/null
		ctl "$i" join_cluster "fleet1@localhost" >/dev/null
		ctl "$i" start_app >/dev/null
	done
	urls
}

case $cmd in
up) up ;;
urls) urls ;;
kill) for i in "$@"; do kill_node "$i"; done ;;
stop) for i in "$@"; do stop_node "$i" & done; wait ;;
start)
	start_epmd
	for i in "$@"; do start_node "$i"; done
	for i in "$@"; do wait_node "$i"; done
	;;
ctl) i=$1; shift; ctl "$i" "$@" ;;
down)
	for i in $(seq 1 "$nodes"); do kill_node "$i"; done
	if [ -f "$dir/epmd.pid" ]; then kill "$(cat "$dir/epmd.pid")" 2>/dev/null || true; rm -f "$dir/epmd.pid"; fi
	# An epmd an Erlang tool started by itself on the cluster's port.
	epmd -port "$base" -kill >/dev/null 2>&1 || true
	;;
*) die "unknown command $cmd" ;;
esac
