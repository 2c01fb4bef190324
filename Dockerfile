# snapshot-webhook: docker build -t snapshot-webhook:0.1.0 .
# Dependencies come from requirements.lock at exact versions, each file checked
# against its hash (refresh the lock with scripts/lock); the project itself is
# built from this checkout and installed without pulling anything else.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY webhook ./webhook
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="snapshot-webhook" \
      org.opencontainers.image.description="Validating admission webhook that keeps the Kubernetes volume-snapshot API consistent across objects" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/requirements.lock \
    && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin webhook
USER 65532:65532
WORKDIR /tmp
# 8443: admissions (HTTPS); 8081: /healthz, /readyz and /metrics (plain HTTP)
EXPOSE 8443 8081
ENTRYPOINT ["snapshot-webhook"]
CMD ["serve", "--host=0.0.0.0"]
