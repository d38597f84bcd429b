#!/usr/bin/env bash
# Build a stand-in for the Python base image the Dockerfiles use (FROM), for hosts with no registry access:
# Debian bookworm (debootstrap minbase) + Debian's Python 3.11, imported under the exact tag.
# Usage (as root): scripts/build-base-image.sh [TAG]   (default: the tag in gateway/Dockerfile)
# Skips the build when the tag already exists; FORCE=1 rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-$(awk '/^FROM /{print $2; exit}' gateway/Dockerfile)}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ -z "${FORCE:-}" ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-base-image: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-base-image: apt-get install debootstrap" >&2; exit 1; }

root=$(mktemp -d /tmp/base-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
log=/tmp/base-image-debootstrap.log
echo "build-base-image: debootstrap bookworm into $root (log: $log)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log" 2>&1 \
  || { tail -20 "$log" >&2; echo "build-base-image: debootstrap failed" >&2; exit 1; }
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | docker import - "$tag-minbase" >/dev/null

# Python from Debian on top, in a build on the host network; pip and apt in later builds trust what this
# host trusts (its CA bundle, which holds a TLS-inspecting proxy's CA if there is one).
ctx=$root/.ctx
mkdir -p "$ctx"
cp "$ca_bundle" "$ctx/ca-certificates.crt"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $tag-minbase
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
      python-is-python3 ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The official image's pip uses its own CA bundle; this one points pip at the system bundle.
ENV LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
DOCKERFILE
docker build --network host -q -t "$tag" "$ctx" >/dev/null
docker image rm "$tag-minbase" >/dev/null
echo "build-base-image: built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))"
