#!/usr/bin/env bash
# Build the container image without a registry, and run it.
#
# Where no base image can be pulled (an air-gapped box, a sandbox) but Debian's packages can be
# installed, this makes the base itself and builds the repository's Dockerfile on it:
#   1. a Debian bookworm root file system made with debootstrap, with Python 3.11, pip and venv,
#      committed as a local image (localhost/debian-python:bookworm), once;
#   2. `buildah bud --isolation chroot` of the Dockerfile on that base (torch from the index pip is
#      configured with on this machine; the host's pip configuration and any local index folders
#      it names are bound read-only into the build, so pip inside sees the same index);
#   3. inside the image, as its non-root user: `clothes-extractor --help`, `clothes-extractor demo`
#      writing into a mounted /out, and `extract` on a photo from a mounted, read-only /data;
#   4. build time and image size.
#
# Needs root (buildah's storage, chroot isolation) and debootstrap + buildah (installed with
# apt-get where missing). Usage:
#   sudo scripts/build_image.sh                 # everything
#   sudo scripts/build_image.sh --rebuild-base  # make the Debian base again
# Settings (environment): IMAGE (clothes-extractor:cpu), BASE_IMAGE
# (localhost/debian-python:bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian), TORCH_PACKAGES
# ("torch torchvision"), TORCH_INDEX_URL (pip's configured index, else PyPI), CONTEXT (the
# repository; any folder holding the Dockerfile and the package), OUT (runs/image-check: what the
# checks inside the image wrote). Heavy steps run under nice/ionice, so a training run beside
# keeps its cores.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${IMAGE:-clothes-extractor:cpu}"
BASE_IMAGE="${BASE_IMAGE:-localhost/debian-python:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TORCH_PACKAGES="${TORCH_PACKAGES:-torch torchvision}"
CONTEXT="${CONTEXT:-$repo}"
OUT="${OUT:-$repo/runs/image-check}"
rebuild_base=0
for arg in "$@"; do
    case "$arg" in
        --rebuild-base) rebuild_base=1 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 1 ;;
    esac
done

say() { printf '\n== %s\n' "$*"; }
low=(nice -n 19)
command -v ionice >/dev/null 2>&1 && low+=(ionice -c3)

if [ "$(id -u)" != 0 ]; then
    echo "run as root: buildah's chroot isolation and debootstrap need it (sudo $0)" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1 || ! command -v buildah >/dev/null 2>&1; then
    say "installing debootstrap and buildah"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${low[@]}" apt-get install -y -qq debootstrap buildah
fi

# pip inside the build reaches the same index as pip here: this machine's pip settings (its
# configuration files and PIP_* variables, as `pip config list` shows them) go into one pip.conf
# bound at /etc/pip.conf, and the local paths they name (file:// indexes, find-links folders, a
# constraints file, a CA bundle) are bound read-only at the same paths.
pip_mounts=()
declare -A pip_settings=()
if command -v python3 >/dev/null 2>&1; then
    while IFS= read -r line; do
        key="${line%%=*}"; key="${key#*.}"           # ':env:.find-links', 'global.cert' -> the option
        value="${line#*=}"; value="${value#\'}"; value="${value%\'}"
        pip_settings[$key]="$value"
    done < <(python3 -m pip config list 2>/dev/null)
fi
pip_conf="$(mktemp /tmp/build-image-pip.XXXXXX.conf)"
cleanup=(rm -rf "$pip_conf")
trap '"${cleanup[@]}"' EXIT
echo "[global]" > "$pip_conf"
for key in "${!pip_settings[@]}"; do
    echo "$key = ${pip_settings[$key]}" >> "$pip_conf"
    for item in ${pip_settings[$key]}; do
        item="${item#file://}"
        case "$item" in /*/simple) item="$(dirname "$item")" ;; esac  # its files/ sit beside simple/
        case "$item" in /*) if [ -e "$item" ]; then pip_mounts+=(--volume "$item:$item:ro"); fi ;; esac
    done
done
pip_mounts+=(--volume "$pip_conf:/etc/pip.conf:ro")
host_index="${pip_settings[index-url]:-}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-${host_index:-https://pypi.org/simple}}"

# 1. The Debian base: python3 (3.11 on bookworm), pip, venv, CA certificates; `python` and `pip`
#    on PATH as in the python:3.11-slim image.
if [ "$rebuild_base" = 1 ] || ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    say "making $BASE_IMAGE with debootstrap ($DEBIAN_MIRROR)"
    start=$(date +%s)
    rootfs="$(mktemp -d /var/tmp/debian-rootfs.XXXXXX)"
    cleanup+=("$rootfs")
    "${low[@]}" debootstrap --variant=minbase \
        --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
    ln -sf pip3 "$rootfs/usr/bin/pip"
    ctr="$(buildah from scratch)"
    mnt="$(buildah mount "$ctr")"
    "${low[@]}" cp -a "$rootfs/." "$mnt/"
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$ctr"
    "${low[@]}" buildah commit --rm "$ctr" "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    echo "base made in $(( $(date +%s) - start )) s"
else
    say "base $BASE_IMAGE exists (--rebuild-base makes it again)"
fi

# 2. The image.
say "building $IMAGE from $CONTEXT on $BASE_IMAGE (torch: $TORCH_PACKAGES from $TORCH_INDEX_URL)"
start=$(date +%s)
"${low[@]}" buildah bud --isolation chroot --network host "${pip_mounts[@]}" \
    --build-arg BASE="$BASE_IMAGE" \
    --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
    --build-arg TORCH_PACKAGES="$TORCH_PACKAGES" \
    -f "$CONTEXT/Dockerfile" -t "$IMAGE" "$CONTEXT"
build_s=$(( $(date +%s) - start ))

# 3. Inside the image: /data read-only (the package's example photos), /out writable, as the
#    image's own non-root user (buildah run uses the image's USER).
say "running inside $IMAGE"
rm -rf "$OUT"
mkdir -p "$OUT"
chmod 1777 "$OUT"
examples="$CONTEXT/clothes_extractor/pretrained/examples/image"
ctr="$(buildah from "$IMAGE")"
trap '"${cleanup[@]}"; buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
inside() {
    "${low[@]}" buildah run --isolation chroot --network host \
        --volume "$OUT:/out" --volume "$examples:/data:ro" "$ctr" -- "$@"
}
echo "user: $(inside id -u):$(inside id -g), entrypoint and user from the image's config:"
buildah inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} user={{.OCIv1.Config.User}} workdir={{.OCIv1.Config.WorkingDir}}' "$IMAGE"
if [ "$(inside id -u)" = 0 ]; then echo "the image runs as root" >&2; exit 1; fi
say "clothes-extractor --help"
inside clothes-extractor --help > "$OUT/help.txt"   # whole, then its head (a pipe to head breaks buildah's)
head -n 25 "$OUT/help.txt"
say "clothes-extractor demo (writes /out/demo-out)"
demo_start=$(date +%s)
inside clothes-extractor demo
demo_s=$(( $(date +%s) - demo_start ))
photo="$(ls "$examples" | head -n 1)"
say "clothes-extractor extract /data/$photo -o /out/garment.png"
inside clothes-extractor extract "/data/$photo" -o /out/garment.png
ls -l "$OUT" "$OUT/demo-out"
for f in "$OUT/demo-out/demo.png" "$OUT/garment.png"; do
    [ -s "$f" ] || { echo "missing: $f" >&2; exit 1; }
done

# 4. Numbers.
say "summary"
buildah images "$BASE_IMAGE"
buildah images "$IMAGE"
echo "inside $IMAGE, the largest installed packages:"
inside sh -c 'cd "$(python3 -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))")" && du -sh -- * > /tmp/sizes && sort -rh /tmp/sizes | head -n 6'
echo "build: ${build_s} s (buildah bud, base already made); demo inside the image: ${demo_s} s"
echo "outputs of the checks: $OUT"
