#!/bin/sh
# make run: starts the relay on its embedded defaults and a demo desktop
# that shares itself, then tells a newcomer what to do next.  Ctrl-C
# stops both.
set -eu
BUILD=${1:-build}
. "$(dirname "$0")/demo-lib.sh"
LISTEN=${ASP_LISTEN:-127.0.0.1:8080}
DATA=${ASP_DATA:-var}
tmp=$(mktemp -d)
relay_pid=
host_pid=

cleanup() {
	[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$DATA"
"$BUILD/asp-relay" --listen "$LISTEN" --data "$DATA" >"$tmp/relay.out" \
	2>>"$DATA/relay.log" &
relay_pid=$!
for _ in $(seq 50); do
	grep -q '^listening on' "$tmp/relay.out" 2>/dev/null && break
	kill -0 "$relay_pid" 2>/dev/null || {
		tail -n 5 "$DATA/relay.log" >&2
		echo "asp-relay failed to start (is $LISTEN in use?)" >&2
		exit 1
	}
	sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$tmp/relay.out")
http=$(echo "$url" | sed 's/^ws/http/')

# Sign-in tokens from the relay's own secret, and the two permissions
# for the demo users, as an administrator would grant them.
demo_users "$DATA" "$http"
demo_desktop "$url" "$tmp/host.out"
owner=$(sed -n 's/^welcome: owner_key=//p' "$tmp/host.out" | head -n 1)
console=$("$BUILD/asp-admin" --relay "$http" --data "$DATA" console-link)

cat <<EOT

  asp-relay is listening on $url  (Ctrl-C stops it)
  A demo desktop is connected and sharing.

  Collaboration code:  ${code:-(the demo host did not start: see $tmp/host.out)}

  Watch it in a browser:   $http/#token=$guest_token
                           (the Shared Collaboration icon, the code, then Join Now)
  Or natively:             $BUILD/asp-view --relay $url --token $guest_token --code ${code:-CODE}
  As the desktop's owner:  ${owner_link:-(no owner link: see $tmp/host.out)}
                           (the desktop's own client, with the floating ball)
    or natively:           $BUILD/asp-view --relay $url --token $host_token --owner-key ${owner:-KEY}
  Administrator's console: $console

  Administrator token:     $admin_token
    $BUILD/asp-admin --relay $http --token <admin token> desktops | audit | assist list
  Users "demo" and "guest" hold both permissions; mint more tokens with
    $BUILD/asp-admin --data $DATA token --user NAME --role user|admin [--desktop ID]
  Health and metrics:      $http/healthz   $http/metrics
  The relay's log:         $DATA/relay.log

EOT
wait "$relay_pid"
