#!/usr/bin/env bash
# Builds an OCI image layout tarball of a busybox image from Debian's busybox-static, offline:
#   scripts/build-busybox-image.sh OUT.tar [REF]     (REF defaults to docker.io/library/busybox:latest)
# The rootfs: /bin/busybox with every applet symlinked in /bin, /etc/passwd and /etc/group
# (root, nobody), /tmp (1777), /var/www/index.html, /root. Config: Cmd ["sh"], PATH.
# Deterministic: fixed mtimes, sorted entries, numeric root ownership.
set -euo pipefail
out="${1:?usage: build-busybox-image.sh OUT.tar [REF]}"
ref="${2:-docker.io/library/busybox:latest}"
busybox="${BUSYBOX:-/usr/bin/busybox}"
[ -x "$busybox" ] || { echo "build-busybox-image: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,etc,tmp,var/www,root,proc,sys,dev,usr/bin,usr/sbin,sbin}
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf busybox "$root/bin/$applet"
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
nobody:x:65534:
G
echo "hello from rc busybox" > "$root/var/www/index.html"
: > "$root/etc/hosts"
: > "$root/etc/resolv.conf"
echo busybox > "$root/etc/hostname"

layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
tar_flags=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix
           --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
tar -C "$root" "${tar_flags[@]}" -cf "$work/layer.tar" .
layer_sha="$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
layer_size="$(stat -c %s "$work/layer.tar")"
mv "$work/layer.tar" "$layout/blobs/sha256/$layer_sha"

blob() {  # blob FILE -> prints "sha size" after storing it
  local sha size
  sha="$(sha256sum "$1" | cut -d' ' -f1)"; size="$(stat -c %s "$1")"
  mv "$1" "$layout/blobs/sha256/$sha"; echo "$sha $size"
}
printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'"$layer_sha"'"]},"history":[{"created_by":"rc scripts/build-busybox-image.sh"}]}' > "$work/config.json"
read -r config_sha config_size < <(blob "$work/config.json")
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_sha"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'"$layer_sha"'","size":'"$layer_size"'}]}' > "$work/manifest.json"
read -r manifest_sha manifest_size < <(blob "$work/manifest.json")
tag="${ref##*:}"
case "$ref" in *:*) ;; *) tag=latest ;; esac
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_sha"'","size":'"$manifest_size"',"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"'"$ref"'","org.opencontainers.image.ref.name":"'"$tag"'"}}]}' > "$layout/index.json"
mkdir -p "$(dirname "$out")"
tar -C "$layout" "${tar_flags[@]}" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "$out: $ref (config sha256:$config_sha)"
