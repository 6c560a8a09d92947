# netguard, the Kubernetes admission webhook.
#
#   docker build -t netguard:0.1.0 .                   # the tag the manifests use: the package version
#   docker run --rm -p 8443:8443 netguard:0.1.0        # self-signed certificate for localhost in ./certs
#
# Two stages: `build` installs the dependencies from requirements.lock (every package pinned with
# its hashes, --require-hashes) and netguard itself into a virtual environment at /opt/netguard;
# the runtime stage gets only that environment: no pip, no setuptools, no wheel, no compiler.
# In the cluster the Deployment (manifests/) passes its own arguments: certificates and
# configuration come from read-only volumes, and the root filesystem is read-only.
#
# The base image is pinned by tag. For a reproducible build pin its digest too (docs/deploy.md):
#   docker buildx imagetools inspect python:3.11-slim-bookworm    # prints "Digest: sha256:..."
# then build with --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>, or put the
# digest in the default below (a tool such as Renovate keeps a digest pin current).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# The build backend (setuptools, pinned with hashes) lives in a venv of its own, never in the
# runtime one; the runtime venv is made without pip and filled by the build venv's pip.
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock \
 && python -m venv --without-pip /opt/netguard \
 && /opt/build/bin/pip --python /opt/netguard/bin/python install --require-hashes --no-deps -r requirements.lock

# netguard itself: a wheel built with the pinned setuptools, installed without dependencies
# (they all come from the lock). Runtime dependencies only: no [test] extra.
COPY pyproject.toml README.md LICENSE ./
COPY webhook ./webhook
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/build/bin/pip --python /opt/netguard/bin/python install --no-deps --no-index /tmp/dist/netguard-*.whl \
 && /opt/netguard/bin/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('pip', 'setuptools', 'wheel')))" \
 && /opt/netguard/bin/netguard --version

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/netguard/bin:$PATH

# No packaging tools at run time: the base image's own pip, setuptools and wheel (and ensurepip,
# which could bring pip back) are removed. The runtime user; manifests/ runs the pod as
# 10001:10001 as well (runAsNonRoot needs a numeric UID).
RUN rm -rf /usr/local/bin/pip* /usr/local/bin/wheel \
        /usr/local/lib/python3.11/site-packages/pip /usr/local/lib/python3.11/site-packages/pip-* \
        /usr/local/lib/python3.11/site-packages/setuptools /usr/local/lib/python3.11/site-packages/setuptools-* \
        /usr/local/lib/python3.11/site-packages/wheel /usr/local/lib/python3.11/site-packages/wheel-* \
        /usr/local/lib/python3.11/site-packages/_distutils_hack \
        /usr/local/lib/python3.11/site-packages/distutils-precedence.pth \
        /usr/local/lib/python3.11/ensurepip \
 && groupadd --system --gid 10001 netguard \
 && useradd --system --uid 10001 --gid 10001 --no-log-init \
        --home-dir /var/lib/netguard --create-home --shell /usr/sbin/nologin netguard

COPY --from=build /opt/netguard /opt/netguard

# Without --certs, `netguard serve` generates a CA and a serving certificate into ./certs:
# the working directory belongs to the runtime user.
WORKDIR /var/lib/netguard
USER 10001:10001
# 8443: the webhook (TLS); 8080: plain HTTP /healthz, /readyz, /metrics with --metrics-bind.
EXPOSE 8443 8080
ENTRYPOINT ["netguard"]
CMD ["serve", "--bind", "0.0.0.0:8443"]
