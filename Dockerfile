# docflow: one image build for the four services.
#
#   docker build -t docflow .                          # entrypoint: ingest-api
#   docker build -t docflow-worker --build-arg SERVICE=worker .
#
# Every image holds all four binaries in /usr/local/bin, so one image can also
# serve every service by overriding the command, as the Kubernetes manifests do:
#   docker run docflow                                  # runs $SERVICE (ingest-api)
#   docker run --entrypoint /usr/local/bin/worker docflow
#
# Only the last stage depends on SERVICE, so building the four variants (as
# docker-compose.yml does) compiles the workspace once and reuses the cache.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------- build ----
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src

# sqlx's query macros must not try to reach a database while compiling.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

COPY . .

RUN cargo build --release --locked -p ingest-api -p worker -p dlq-admin -p metrics-tracker -p docflow-migrate \
 && mkdir -p /out \
 && for bin in ingest-api worker dlq-admin metrics-tracker; do \
        install -m 0755 "target/release/$bin" "/out/$bin"; \
    done

# -------------------------------------------------------------- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to managed Postgres, RabbitMQ (amqps) and object stores.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Fixed non-root ids so Kubernetes can check runAsNonRoot and volumes can be
# chowned (fsGroup) to match. /data/blobs exists owned by that user, so a fresh
# named volume mounted there (docker-compose.yml) inherits the ownership.
RUN groupadd --system --gid 10001 docflow \
 && useradd --system --uid 10001 --gid docflow --home-dir /app --shell /usr/sbin/nologin docflow \
 && mkdir -p /app /data/blobs \
 && chown -R docflow:docflow /app /data

COPY --from=build /out/ /usr/local/bin/

# Which binary the image runs by default: ingest-api, worker, dlq-admin or metrics-tracker.
ARG SERVICE=ingest-api
RUN test -x "/usr/local/bin/${SERVICE}" \
 && ln -s "/usr/local/bin/${SERVICE}" /usr/local/bin/docflow-service

ENV BLOB_STORE_URL=file:///data/blobs \
    LOG_FORMAT=json

WORKDIR /app
USER 10001:10001

# Default LISTEN_ADDR ports: ingest-api 8080, dlq-admin 8081, metrics-tracker 8082,
# worker 8083 (health and /metrics only).
EXPOSE 8080 8081 8082 8083

# The services handle SIGTERM themselves (the worker drains in-flight jobs).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docflow-service"]
