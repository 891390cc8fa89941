#!/usr/bin/env bash
# Installs the Debian packages the full test suite uses as real peers and toolchains:
# QEMU + arm-none-eabi for the firmware stub, mbedTLS for its posix port's device-side crypto,
# clang for the fuzzer, SoftHSM2, PostgreSQL, openssl.
# Safe to run repeatedly: installs only what is missing. Needs root (or passwordless sudo).
set -euo pipefail
packages=(openssl make qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi clang
          libclang-rt-14-dev softhsm2 postgresql libmbedtls-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "note: not installing ${missing[*]} (needs root); tests that need them will be skipped." >&2
  echo "      install with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 0
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
