#!/usr/bin/env bash
# A throwaway SoftHSM2 token with a fresh EC P-256 signing key, in a temp dir.
#
#   eval "$(bash .ci/services/softhsm.sh start)"   # prints export lines
#   bash .ci/services/softhsm.sh stop "$PROVISION_TEST_HSM_DIR"
#
# The key is generated inside the token (non-extractable) with the project's own
# provision.pki.hsm when $PYTHON can import it; otherwise an openssl key is imported with
# softhsm2-util. Idempotent: `start` with PROVISION_TEST_HSM_DIR pointing at an existing
# token prints its variables again. Installing SoftHSM2 is not this script's job (softhsm2).
set -euo pipefail

TOKEN_LABEL=provision-test
KEY_LABEL=issuing-ca
KEY_ID=01
PYTHON=${PYTHON:-python3}

find_module() {
    local p
    for p in "${PROVISION_PKCS11_MODULE:-}" /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so; do
        if [ -n "$p" ] && [ -f "$p" ]; then echo "$p"; return 0; fi
    done
    return 1
}

print_env() {
    local dir=$1 module=$2
    echo "export PROVISION_TEST_HSM_DIR=$dir"
    echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
    echo "export PROVISION_PKCS11_MODULE=$module"
    echo "export PROVISION_TEST_HSM_PIN_FILE=$dir/pin"
    echo "export PROVISION_TEST_HSM_URI='pkcs11:token=$TOKEN_LABEL;object=$KEY_LABEL;id=%$KEY_ID?pin-source=file:$dir/pin'"
}

start() {
    command -v softhsm2-util >/dev/null || { echo "softhsm.sh: softhsm2-util not found (apt-get install softhsm2)" >&2; exit 3; }
    local module
    module=$(find_module) || { echo "softhsm.sh: libsofthsm2.so not found" >&2; exit 3; }
    local dir=${PROVISION_TEST_HSM_DIR:-}
    if [ -n "$dir" ] && [ -f "$dir/softhsm2.conf" ] && [ -f "$dir/ready" ]; then
        print_env "$dir" "$module"
        return 0
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/provision-hsm.XXXXXX")
    mkdir "$dir/tokens"
    cat >"$dir/softhsm2.conf" <<EOF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
    export SOFTHSM2_CONF=$dir/softhsm2.conf
    # A fresh random PIN per token; the SO PIN is never needed again.
    local pin so_pin
    pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    so_pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$pin" >"$dir/pin")
    softhsm2-util --init-token --free --label "$TOKEN_LABEL" --pin "$pin" --so-pin "$so_pin" >/dev/null
    local uri="pkcs11:token=$TOKEN_LABEL;object=$KEY_LABEL;id=%$KEY_ID?pin-source=file:$dir/pin&module-path=$module"
    if ! "$PYTHON" -c 'import sys; from provision.pki.hsm import generate_hsm_key; generate_hsm_key(sys.argv[1])' \
        "$uri" 2>/dev/null; then
        (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/key.pem" 2>/dev/null)
        softhsm2-util --import "$dir/key.pem" --token "$TOKEN_LABEL" --label "$KEY_LABEL" \
            --id "$KEY_ID" --pin "$pin" >/dev/null
        rm -f "$dir/key.pem"
    fi
    touch "$dir/ready"
    print_env "$dir" "$module"
}

stop() {
    local dir=${1:-${PROVISION_TEST_HSM_DIR:-}}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    case "$dir" in
        "${TMPDIR:-/tmp}"/provision-hsm.*) rm -rf "$dir" ;;
        *) echo "softhsm.sh: refusing to remove $dir (not a token this script made)" >&2; exit 2 ;;
    esac
}

case "${1:-start}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
