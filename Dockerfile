# clothes-extractor in a container: the package, its default models (they ship inside it) and the
# `clothes-extractor` command as the entry point, run as a non-root user.
#
# GPU boxes, on NVIDIA's PyTorch image (torch, torchvision, CUDA and cuDNN come with it and are
# kept as they are; it needs Python 3.11 or newer: a release on Ubuntu 24.04, such as 25.04):
#   docker build --build-arg BASE=nvcr.io/nvidia/pytorch:25.04-py3 -t clothes-extractor:gpu .
# CPU only, on the slim Python image (the default; torch's CPU wheels are installed):
#   docker build -t clothes-extractor:cpu .
# Without a registry, from a Debian base made with debootstrap and buildah: scripts/build_image.sh
#
# Mount points: /data (inputs, e.g. -v "$PWD/data:/data:ro"), /out (outputs and the working
# folder, so relative paths such as `demo`'s demo-out/ land there) and /cache (downloaded weights:
# torch hub and Hugging Face caches, via XDG_CACHE_HOME). All three, and HOME, are writable by any
# user, so `docker run --user "$(id -u):$(id -g)"` writes files you own. The README's "Container
# image" section has the run commands.
ARG BASE=python:3.11-slim
FROM ${BASE}

# Where torch comes from when the base has none (the slim image). The default is PyTorch's CPU
# wheel index; name a CUDA index (https://download.pytorch.org/whl/cu128, ...) for a GPU build on
# a plain Python base. A base that already has torch and torchvision (NVIDIA's) installs nothing.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_PACKAGES="torch torchvision"
# The non-root user the image runs as (a high id, clear of the base's own users, such as the
# `ubuntu` user, 1000, of NVIDIA's Ubuntu 24.04 images).
ARG APP_UID=10001
# Optional extras of the package, comma-separated: app (`serve`), tensorboard, onnx, ...
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/home/extractor \
    XDG_CACHE_HOME=/cache \
    TORCHINDUCTOR_CACHE_DIR=/cache/torchinductor

# torch first, only where the base lacks it: NVIDIA's build stays untouched, and the package's own
# `torch>=2.4` requirement is then met by whatever is installed. PIP_BREAK_SYSTEM_PACKAGES lets pip
# install into a distribution's Python (a Debian or Ubuntu base); the slim image does not need it.
RUN set -eu; \
    export PIP_BREAK_SYSTEM_PACKAGES=1; \
    if python3 -c "import torch, torchvision" 2>/dev/null; then \
        python3 -c "import torch, torchvision; print('torch', torch.__version__, 'and torchvision', torchvision.__version__, 'come with the base image')"; \
    else \
        python3 -m pip install --index-url "${TORCH_INDEX_URL}" ${TORCH_PACKAGES}; \
    fi

# The package with its default models, from the build context bound read-only (no copy of the
# sources stays in a layer; .dockerignore keeps the context to pyproject.toml, README.md, LICENSE
# and clothes_extractor/). pip builds in a scratch copy, since the bound folder is read-only.
RUN --mount=type=bind,target=/tmp/context \
    set -eu; \
    export PIP_BREAK_SYSTEM_PACKAGES=1; \
    cp -r /tmp/context /tmp/src; \
    python3 -m pip install "/tmp/src${EXTRAS:+[${EXTRAS}]}"; \
    rm -rf /tmp/src; \
    python3 -c "import clothes_extractor.pretrained as p, pathlib; d = pathlib.Path(p.__file__).parent; assert (d / 'generator.safetensors').is_file() and (d / 'segmenter.safetensors').is_file(), 'default models missing'"

RUN set -eu; \
    useradd --uid "${APP_UID}" --user-group --home-dir /home/extractor --create-home --shell /bin/sh extractor; \
    mkdir -p /data /out /cache; \
    chmod 1777 /data /out /cache /home/extractor

USER ${APP_UID}
WORKDIR /out
ENTRYPOINT ["clothes-extractor"]
CMD ["--help"]
