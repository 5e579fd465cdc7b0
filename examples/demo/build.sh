#!/usr/bin/env bash
# Build the demo image (default localhost/kfab-demo:1) from local files only: Debian's busybox-static in a
# FROM scratch image (no image registry is needed). Then `kfab image push -i INVENTORY localhost/kfab-demo:1`.
#   bash examples/demo/build.sh [IMAGE]
set -euo pipefail
image="${1:-localhost/kfab-demo:1}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The .deb from the Debian mirror this machine's apt uses, downloaded, not installed (as root: apt's _apt
# user may not write into this private temporary directory).
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root busybox-static >/dev/null)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
ctx="$work/context"
mkdir -p "$ctx/bin"
cp "$here/image/Containerfile" "$here/image/start.sh" "$ctx/"
cp "$work/deb/bin/busybox" "$ctx/bin/busybox"
for applet in $("$ctx/bin/busybox" --list); do
    [ -e "$ctx/bin/$applet" ] || ln -s busybox "$ctx/bin/$applet"
done
podman build -q -t "$image" "$ctx" >/dev/null
echo "$image"
