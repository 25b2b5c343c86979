#!/usr/bin/env bash
# The container image, built and run as users run BIDS Apps, from this tree:
#
#   1. podman, runc and mmdebstrap (Debian's; apt-get update first) if missing,
#      and the base image debian:bookworm-slim made locally with mmdebstrap if
#      it is not there (no container registry is reachable from CI);
#   2. `podman build` of ./Dockerfile (behind a TLS-inspecting proxy the host's
#      CA bundle is mounted into the build and named by PIP_CERT);
#   3. `--version` (equal to setup.cfg's and to the image's version label) and
#      `--help`;
#   4. the App on a small simulated fMRIPrep dataset (.ci/make_test_dataset.py),
#      three commands (volume participant with --write-provenance, fsLR CIFTI
#      participant, volume group), each run twice: in the container, read-only
#      root, a random user id, no home, the data mounted read-only; and by the
#      host's install (.venv/bin/nipype-ward, as .ci/run makes it). The two
#      output trees must be the same bytes but for what .ci/compare_outputs.py
#      lists (machine paths, run ids, run times, the zip headers of .npz);
#   5. `podman save --format docker-archive`, the file Apptainer builds from.
#
# Prints the build time, the image size and each run's time. Run it alone
# (bash .ci/container.sh) or from .ci/run. As root (podman, apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

IMAGE=${IMAGE:-localhost/nipype-ward:ci}
BASE=docker.io/library/debian:bookworm-slim
# crun rejects this machine's hybrid cgroup layout; podman's default ulimits
# exceed its hard limits.
PODMAN_RUN=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

# -- 1. tools and base image -------------------------------------------------
missing=()
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
if ! podman image exists "$BASE"; then
  t=$SECONDS
  mmdebstrap --variant=apt bookworm - | podman import - "$BASE"
  echo "container.sh: base image $BASE made by mmdebstrap in $((SECONDS - t)) s"
fi

# -- 2. build ------------------------------------------------------------------
version=$(sed -n 's/^version *= *//p' setup.cfg)
build_args=(--build-arg "VERSION=$version"
            --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
            --build-arg "SOURCE=$(git config --get remote.origin.url 2>/dev/null || true)")
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  # At a path of its own: over the image's own CA file, the image's
  # ca-certificates package could not install.
  build_args+=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
               --build-arg PIP_CERT=/run/host-ca.crt)
fi
t=$SECONDS
podman build "${PODMAN_RUN[@]}" "${build_args[@]}" -t "$IMAGE" . > /tmp/nipype-ward-build.log 2>&1 \
  || { tail -50 /tmp/nipype-ward-build.log; echo "container.sh: podman build failed" >&2; exit 1; }
build_time=$((SECONDS - t))
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "container.sh: image $IMAGE built in ${build_time} s, $((size / 1000000)) MB" \
     "(podman image ls: $(podman image ls --format '{{.Size}}' "$IMAGE"))"
if [ "$size" -ge 1500000000 ]; then
  echo "container.sh: the image is over 1.5 GB" >&2; exit 1
fi

# -- 3. --version, --help, labels --------------------------------------------
run=(podman run --rm "${PODMAN_RUN[@]}")
said=$("${run[@]}" "$IMAGE" --version)
label=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$IMAGE")
if [ "$said" != "nipype-ward $version" ] || [ "$label" != "$version" ]; then
  echo "container.sh: --version says '$said', the label '$label', setup.cfg '$version'" >&2
  exit 1
fi
"${run[@]}" --read-only --user 54321:54321 "$IMAGE" --help | grep -q "usage: nipype-ward"
echo "container.sh: $said; --help works read-only as user 54321"

# -- 4. the App, in the container and on the host ----------------------------
if [ ! -x .venv/bin/nipype-ward ]; then
  # Alone, from a clean clone: the host install as .ci/run makes it.
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
fi
# The versions the host and the image resolved from setup.cfg: the outputs
# record some (sidecars, PROV), so a difference here explains one there.
"${run[@]}" --entrypoint cat "$IMAGE" /opt/venv/requirements-frozen.txt > /tmp/nipype-ward-image-freeze.txt
.venv/bin/python -m pip freeze --all --exclude-editable > /tmp/nipype-ward-host-freeze.txt
.venv/bin/python - <<'EOF'
image = dict(line.strip().split("==") for line in open("/tmp/nipype-ward-image-freeze.txt")
             if "==" in line and line.split("==")[0] not in ("nipype-ward", "pip", "setuptools"))
host = dict(line.strip().split("==") for line in open("/tmp/nipype-ward-host-freeze.txt")
            if "==" in line)
same = [name for name in image if host.get(name) == image[name]]
other = [f"{name} {host.get(name, 'absent')} (image {image[name]})"
         for name in image if host.get(name) != image[name]]
print(f"container.sh: {len(same)} of the image's {len(image)} packages at the host's version"
      + ("; differing on the host: " + ", ".join(other) if other else ""))
EOF

scratch=$(mktemp -d /tmp/nipype-ward-ci.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch"
.venv/bin/python .ci/make_test_dataset.py "$scratch/data" --surfaces \
  --templateflow-home "$scratch/templateflow"

# Same BLAS kernels in both runs: OpenBLAS' settings of this machine, if any.
blas_env=()
for name in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS OMP_NUM_THREADS; do
  [ -n "${!name:-}" ] && blas_env+=(-e "$name")
done

status=0
compare() {  # name, then the App's arguments after OUTPUT_DIR
  local name=$1; shift
  local host=$scratch/host-$name box=$scratch/container-$name
  local uid=$(( 10000 + RANDOM % 50000 ))
  mkdir -p "$box/out" "$host/tmp"
  chown "$uid:$uid" "$box/out"
  local t=$SECONDS
  "${run[@]}" --read-only --user "$uid:$uid" "${blas_env[@]}" \
    -v "$scratch/data:/data:ro" -v "$box/out:/out" "$IMAGE" \
    /data /out "$@" -w /tmp/work --nprocs 2
  local container_time=$((SECONDS - t))
  t=$SECONDS
  TEMPLATEFLOW_HOME=$scratch/templateflow .venv/bin/nipype-ward \
    "$scratch/data" "$host/out" "$@" -w "$host/tmp/work" --nprocs 2
  echo "container.sh: $name: container (user $uid, read-only) ${container_time} s," \
       "host $((SECONDS - t)) s"
  .venv/bin/python .ci/compare_outputs.py "$host/out" "$box/out" \
    --replace "$scratch/data=/data" --replace "$host=" || status=1
}
compare volume participant --n-clusters 20 50 --write-provenance
compare fslr participant --space fsLR:den-91k --n-clusters 30 100
compare group group --n-clusters 20 50
if [ $status -ne 0 ]; then
  echo "container.sh: the container's outputs differ from the host's (above)" >&2
  exit 1
fi

# -- 5. the archive Apptainer builds from --------------------------------------
t=$SECONDS
podman save --format docker-archive -o "$scratch/nipype-ward.tar" "$IMAGE"
echo "container.sh: podman save --format docker-archive: $(du -m "$scratch/nipype-ward.tar" | cut -f1) MB" \
     "in $((SECONDS - t)) s (apptainer build nipype-ward.sif docker-archive://nipype-ward.tar)"

echo "container.sh: done in $((SECONDS - started)) s (build ${build_time} s)"
