#!/usr/bin/env bash
# `make demo`: from nothing to a device that proves its credentials with a real mutual-TLS
# handshake. Every step is a `provision` command, printed before it runs. Works in a fresh
# temporary directory (removed at the end) with the package installed; background processes
# (the simulated device, the TLS test server) are stopped on exit, also on Ctrl-C or failure.
set -euo pipefail

PROVISION=${PROVISION:-provision}
TAG=42
DEVICE_ID=device-0001
WORK=$(mktemp -d "${TMPDIR:-/tmp}/provision-demo.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then BOLD=$'\033[1m' GREEN=$'\033[1;32m' PLAIN=$'\033[0m'; else BOLD= GREEN= PLAIN=; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# Print a command the way a shell would take it, then run it.
show() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
}
run() {
    show "$@"
    "$@"
}

# Wait until FILE has a line containing MARKER (the process PID must stay alive); print it.
wait_for() {
    local file=$1 marker=$2 pid=$3 i
    for i in $(seq 1 100); do
        if grep -q -- "$marker" "$file" 2>/dev/null; then
            grep -m1 -- "$marker" "$file"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: the background process stopped early:" >&2
            cat "$file" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "demo: gave up waiting for '$marker' in $file" >&2
    return 1
}

cd "$WORK"
echo "working in $WORK"

step "1/7 Certificate authority"
mkdir ca server device
run "$PROVISION" pki init-ca --out ca --cn "Provision Demo Root" --org "provision demo" --no-password

step "2/7 Server credentials (for localhost and 127.0.0.1)"
run "$PROVISION" pki issue server --ca ca --out server --san localhost --san 127.0.0.1

step "3/7 Device credentials"
run "$PROVISION" pki issue client --ca ca --out device --device-id "$DEVICE_ID"

step "4/7 Credential bundle for sec_tag $TAG, checked and verified"
run "$PROVISION" bundle pack --out "$DEVICE_ID.prvb" --tag "$TAG" --device-id "$DEVICE_ID" \
    --root-ca ca/ca.crt --client-cert "device/$DEVICE_ID.crt" --client-key "device/$DEVICE_ID.key"
run "$PROVISION" bundle verify "$DEVICE_ID.prvb"

step "5/7 Simulated device started (native protocol, flash in device.flash)"
show "$PROVISION" sim --dialect native --tcp 0 --flash device.flash; echo "  (in the background)"
"$PROVISION" sim --dialect native --tcp 0 --flash device.flash >sim.out 2>sim.log &
PIDS+=("$!")
URL=$(wait_for sim.out "socket://" "${PIDS[-1]}")
echo "device on $URL"

step "6/7 Bundle written to the device, verified and listed"
run "$PROVISION" device write --port "$URL" "$DEVICE_ID.prvb"
run "$PROVISION" device verify --port "$URL" "$DEVICE_ID.prvb"
run "$PROVISION" device list --port "$URL"

step "7/7 Mutual-TLS handshake: the device proves its credentials"
show "$PROVISION" testserver --ca ca/ca.crt --cert server/server.crt --key server/server.key \
    --port 0
echo "  (in the background)"
"$PROVISION" testserver --ca ca/ca.crt --cert server/server.crt --key server/server.key \
    --port 0 >testserver.log 2>&1 &
PIDS+=("$!")
LISTENING=$(wait_for testserver.log "listening on" "${PIDS[-1]}")
echo "test server: $LISTENING"
PORT=${LISTENING#*127.0.0.1:}
PORT=${PORT%% *}
run "$PROVISION" device tls-check --port "$URL" --server "localhost:$PORT" --tag "$TAG"
# The server's side of the story: the subject it verified.
wait_for testserver.log "accepted " "${PIDS[-1]}" | sed 's/^/test server: /'

printf '\n%sdemo done: %s holds working credentials (mutual TLS accepted).%s\n' \
    "$GREEN" "$DEVICE_ID" "$PLAIN"
