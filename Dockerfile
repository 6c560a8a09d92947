# netguard, the Kubernetes admission webhook.
#
#   docker build -t netguard:dev .
#   docker run --rm -p 8443:8443 netguard:dev      # self-signed certificate for localhost in ./certs
#
# In the cluster the Deployment (manifests/) passes its own arguments: certificates and
# configuration come from read-only volumes, and the root filesystem is read-only.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The runtime user; manifests/ runs the pod as 10001:10001 as well (runAsNonRoot needs a numeric UID).
RUN groupadd --system --gid 10001 netguard \
 && useradd --system --uid 10001 --gid 10001 --no-log-init \
        --home-dir /var/lib/netguard --create-home --shell /usr/sbin/nologin netguard

# Runtime dependencies only (no [test] extra); the sources are not kept in the image.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN pip install --no-cache-dir . \
 && rm -rf /src

# Without --certs, `netguard serve` generates a CA and a serving certificate into ./certs:
# the working directory belongs to the runtime user.
WORKDIR /var/lib/netguard
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["netguard"]
CMD ["serve", "--bind", "0.0.0.0:8443"]
