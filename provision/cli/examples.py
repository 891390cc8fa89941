"""The examples at the foot of each command's help (esptool-style epilog). Keyed by the
command's path; tests/core/test_cli_help.py fails when a command has none."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "pki init-ca": [
        "provision pki init-ca -o ca --cn 'Acme Root CA'    # prompts for a password",
        "provision pki init-ca -o ca --password-file ca.pw --intermediate Issuing",
        "provision pki init-ca -o ca --no-password          # for tests and demos",
    ],
    "pki csr": ["provision pki csr --cn dev-0001 --name dev-0001 -o csr/  # key + CSR"],
    "pki sign-csr": ["provision pki sign-csr --ca ca dev-0001.csr -o dev-0001.crt"],
    "pki issue server": [
        "provision pki issue server --ca ca -o srv --san mqtt.example.com",
    ],
    "pki issue client": ["provision pki issue client --ca ca -o dev --device-id dev-0001"],
    "pki issue device": ["provision pki issue device --ca ca -o dev --device-id dev-0001"],
    "check": [
        "provision check --root ca/ca.crt --cert dev/d1.crt --key dev/d1.key",
        "provision check --root ca/ca.crt --cert dev/d1.crt --target nrf91 --json",
    ],
    "bundle pack": [
        "provision bundle pack --tag 42 --root-ca ca/ca.crt \\",
        "    --client-cert dev/d1.crt --client-key dev/d1.key -o d1.prvb",
        "provision bundle pack --spec set.toml -o - | provision bundle inspect -",
    ],
    "bundle inspect": ["provision bundle inspect dev-0001.prvb --json"],
    "bundle verify": ["provision bundle verify dev-0001.prvb --pubkey signer.pub"],
    "bundle unpack": ["provision bundle unpack dev-0001.prvb -o items/"],
    "device info": [
        "provision device info --port /dev/ttyACM0        # COM3 on Windows",
        "provision device info --port auto --json",
    ],
    "device list": ["provision device list --port /dev/ttyACM0 --dialect at-cmng"],
    "device write": [
        "provision device write --port /dev/ttyACM0 dev-0001.prvb",
        "provision device write --port COM3 --dialect at-cmng --tag 42 \\",
        "    --root-ca ca/ca.crt --client-cert dev/d1.crt --client-key dev/d1.key",
        "PROVISION_PORT=COM3 provision device write --before hard-reset d1.prvb",
    ],
    "device verify": ["provision device verify --port /dev/ttyACM0 dev-0001.prvb"],
    "device delete": [
        "provision device delete --port /dev/ttyACM0 --tag 42 --slot client_key",
        "provision device delete --port /dev/ttyACM0 --all --yes",
    ],
    "device keygen": [
        "provision device keygen --port /dev/ttyACM0 --tag 43 --ca ca -o dev-43.csr",
    ],
    "device ports": ["provision device ports --json"],
    "device tls-check": [
        "provision device tls-check --port COM3 --tag 42 --server 127.0.0.1:8443",
        "provision device tls-check --bundle d1.prvb --server mqtt.example.com:8883",
    ],
    "sim": [
        "provision sim --dialect at-cmng --pty              # prints /dev/pts/N",
        "provision sim --tcp 0 --flash dev.flash --json     # socket://127.0.0.1:PORT",
    ],
    "line run": ["provision line run station.toml --operator alice"],
    "line simulate": ["provision line simulate 4 --dialect at-cmng"],
    "registry show": ["provision registry show --registry line.sqlite dev-0001 --pem"],
    "registry verify": ["provision registry verify --registry line.sqlite"],
    "registry export": ["provision registry export --registry line.sqlite --format csv -o -"],
    "testserver": ["provision testserver --ca ca/ca.crt --cert srv/srv.crt --key srv/srv.key"],
}


def epilog(path: str) -> str | None:
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    # \b: click keeps the paragraph's line breaks instead of re-wrapping it.
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
