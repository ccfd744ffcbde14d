#!/bin/sh
# Install the Debian packages libamp needs to build, test and benchmark.
# Idempotent: installs only what is missing, and refreshes the package index
# only when something must be installed.
set -eu

PACKAGES="build-essential cmake pkg-config
libev-dev libssl-dev libmsgpack-dev libcriterion-dev libjansson-dev libinih-dev libedit-dev
clang-14 libclang-rt-14-dev llvm-14
python3 python3-twisted python3-pytest python3-pexpect python3-msgpack python3-cryptography nats-server openssl faketime iproute2 gnutls-bin
bash-completion groff-base man-db shellcheck
gcc-arm-none-eabi binutils-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm
gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils-arm-linux-gnueabihf qemu-user"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

echo "bootstrap: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
