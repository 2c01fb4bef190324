# snapshot-webhook: docker build -t snapshot-webhook:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin webhook
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
ENTRYPOINT ["snapshot-webhook"]
CMD ["serve", "--host=0.0.0.0"]
