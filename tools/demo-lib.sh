# Shared by make run (run-demo.sh) and make cluster (run-cluster.sh):
# the demo's sign-in tokens and permissions, and its sharing desktop.
# Sourced; BUILD must be set.

# demo_users DATA HTTP: admin_token, host_token and guest_token minted
# from DATA/secret, and both permissions granted to the demo users
# through the relay at HTTP, as an administrator would grant them.
demo_users() {
	admin_token=$(demo_mint "$1" --user admin --role admin)
	host_token=$(demo_mint "$1" --user demo --role user --desktop demo)
	guest_token=$(demo_mint "$1" --user guest --role user)
	for u in demo guest; do
		"$BUILD/asp-admin" --relay "$2" --token "$admin_token" \
			policy set "$u" help=on collab=on >/dev/null
	done
}

demo_mint() {
	dir=$1
	shift
	"$BUILD/asp-admin" --data "$dir" token "$@" | tail -n 1
}

# demo_desktop RELAYS OUT: the demo desktop, sharing, on RELAYS (asp-host's
# --relay list), its lines in OUT; host_pid is its pid.  Waits up to 10 s
# for its code, then sets code and owner_link ("" if it did not start).
demo_desktop() {
	"$BUILD/asp-host" --relay "$1" --desktop demo --name "Demo desktop" \
		--token "$host_token" --share >"$2" 2>&1 </dev/null &
	host_pid=$!
	for _ in $(seq 100); do
		grep -q '^code: ' "$2" 2>/dev/null && break
		sleep 0.1
	done
	code=$(sed -n 's/^code: //p' "$2" | head -n 1)
	owner_link=$(sed -n 's/^owner-link: //p' "$2" | head -n 1)
}
