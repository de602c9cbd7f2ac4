#!/bin/sh
# make cluster: a cluster of two relay nodes through one Redis on this
# machine (docs/cluster.md), and a demo desktop that shares itself, then
# tells a newcomer what to do next, as `make run` does for one relay.
# Ctrl-C stops everything.
#
# Redis listens on a free loopback port and keeps its append-only file in
# $ASP_DATA/redis, so codes and owner keys survive a restart of the
# cluster, as var/ does for `make run`; each node's data directory holds a
# copy of the one signing secret, as an operator would copy it.
set -eu
BUILD=${1:-build}
. "$(dirname "$0")/demo-lib.sh"
LISTEN_A=${ASP_LISTEN:-127.0.0.1:8080}
LISTEN_B=${ASP_LISTEN2:-127.0.0.1:8081}
DATA=${ASP_DATA:-var/cluster}
tmp=$(mktemp -d)
pids=

cleanup() {
	# The host first, then the nodes (they release their leases), Redis last.
	for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

command -v redis-server >/dev/null || { echo "redis-server is missing: make deps" >&2; exit 1; }
umask 077
mkdir -p "$DATA/redis" "$DATA/a" "$DATA/b"

# wait_line FILE REGEX PID WHAT: waits for a line in FILE while PID lives.
wait_line() {
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	echo "$4 failed to start:" >&2
	tail -n 5 "$1" >&2
	return 1
}

# Redis on a free port: the kernel tells a listener where it may bind, so
# try a few random ones and keep the first that starts.
redis_pid=
for _ in 1 2 3 4 5 6 7 8; do
	port=$(shuf -i 20000-60000 -n 1)
	redis-server --port "$port" --bind 127.0.0.1 --dir "$DATA/redis" \
		--save '' --appendonly yes --appendfsync always \
		--daemonize no >"$DATA/redis.log" 2>&1 &
	redis_pid=$!
	if wait_line "$DATA/redis.log" 'Ready to accept connections' "$redis_pid" redis-server 2>/dev/null; then
		break
	fi
	wait "$redis_pid" 2>/dev/null || true
	redis_pid=
done
[ -n "$redis_pid" ] || { tail -n 5 "$DATA/redis.log" >&2; echo "redis-server failed to start" >&2; exit 1; }
pids="$redis_pid"
redis=redis://127.0.0.1:$port

# The one signing secret, copied to every node.
if [ ! -s "$DATA/a/secret" ]; then
	head -c 32 /dev/urandom >"$DATA/a/secret"
fi
cp "$DATA/a/secret" "$DATA/b/secret"
chmod 600 "$DATA/a/secret" "$DATA/b/secret"

# start_node ID LISTEN: one node; sets its URL in node_url.
start_node() {
	"$BUILD/asp-relay" --listen "$2" --data "$DATA/$1" --redis "$redis" \
		--node-id "$1" --node-url "ws://$2" >"$tmp/$1.out" \
		2>>"$DATA/$1.log" &
	node_pid=$!
	pids="$node_pid $pids"
	wait_line "$tmp/$1.out" '^listening on' "$node_pid" "asp-relay node $1 (is $2 in use?)" || {
		tail -n 5 "$DATA/$1.log" >&2
		exit 1
	}
}
start_node a "$LISTEN_A"
pid_a=$node_pid
url_a=ws://$LISTEN_A
http_a=http://$LISTEN_A
start_node b "$LISTEN_B"
url_b=ws://$LISTEN_B
http_b=http://$LISTEN_B

# Sign-in tokens from the cluster's secret, and the two permissions for
# the demo users, set through one node for the whole cluster.
demo_users "$DATA/a" "$http_a"
# The demo desktop on node a, with node b as its second relay.
demo_desktop "$url_a,$url_b" "$tmp/host.out"
pids="$host_pid $pids"
console=$("$BUILD/asp-admin" --relay "$http_b" --data "$DATA/b" console-link)
if [ -n "$code" ]; then
	demo="A demo desktop is connected to node a and sharing."
else
	demo="The demo desktop did not start: $(tail -n 1 "$tmp/host.out")"
fi

cat <<EOT

  A cluster of two asp-relay nodes is running  (Ctrl-C stops it)
    node a: $url_a   (log $DATA/a.log)
    node b: $url_b   (log $DATA/b.log)
    Redis:  $redis   (append-only file in $DATA/redis)
  $demo

  Collaboration code:  ${code:-(the demo host did not start: see $tmp/host.out)}

  Watch it in a browser, through node b (it sends you on to node a):
                           $http_b/?relay=$url_b,$url_a#token=$guest_token
                           (the Shared Collaboration icon, the code, then Join Now)
  Or natively:             $BUILD/asp-view --relay $url_b,$url_a --token $guest_token --code ${code:-CODE}
  As the desktop's owner:  ${owner_link:-(no owner link: see $tmp/host.out)}
  Administrator's console (node b, the whole cluster): $console

  Administrator token:     $admin_token
    $BUILD/asp-admin --relay $http_b --token <admin token> desktops | audit | assist list
  Failover:                kill -9 $pid_a   (node a: the desktop and its viewers
                           move to node b within a few seconds)
  Cluster state:           redis-cli -p $port keys 'asp:*'
  Health and metrics:      $http_a/metrics   $http_b/metrics

EOT
wait "$redis_pid"
