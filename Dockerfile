# syntax=docker/dockerfile:1
#
# One Dockerfile, one small image per binary of the shop. SERVICE names the binary:
#
#   docker build --build-arg SERVICE=shop-catalog -t shop-catalog:dev .
#   docker build --build-arg SERVICE=stack --target tool -t shop-stack:dev .   # bootstrap job
#
# Every image holds one binary at /usr/local/bin/shop (its entrypoint), runs as the
# numeric non-root user 65532 on distroless (glibc and CA certificates, no shell, no
# package manager), and probes itself with `shop healthcheck` (GET /healthz on its own
# port). All images share the stages before the last: the workspace is compiled once.
#
# Stages: chef (the cargo-chef tool) -> planner (recipe.json: the dependency graph
# alone) -> build (dependencies cooked in their own layer, which only a change to a
# Cargo.toml or Cargo.lock invalidates; then the workspace) -> runtime -> tool | service.

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
# Images are built with the workspace's `dist` profile: release plus thin LTO (the
# `release` profile of local runs skips LTO to link faster). Cook and build use the
# same profile, so the cooked layer is reused.
ENV CARGO_TERM_COLOR=never
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --profile dist --locked --recipe-path recipe.json \
      -p shop-user -p shop-catalog -p shop-inventory -p shop-order \
      -p shop-payment -p shop-shipping -p shop-gateway -p shop-stack
COPY . .
# One root filesystem per binary under /out/<binary>/, so the runtime stage copies
# exactly one: its binary, and for the gateway its default gateway file.
RUN cargo build --profile dist --locked --bins \
      -p shop-user -p shop-catalog -p shop-inventory -p shop-order \
      -p shop-payment -p shop-shipping -p shop-gateway -p shop-stack \
 && for bin in shop-user shop-catalog shop-inventory shop-order shop-payment \
               shop-shipping shop-gateway stack; do \
      mkdir -p "/out/$bin/usr/local/bin" \
      && cp "target/dist/$bin" "/out/$bin/usr/local/bin/shop"; \
    done \
 && mkdir -p /out/shop-gateway/etc/shop \
 && cp gateway/gateway.toml /out/shop-gateway/etc/shop/gateway.toml

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG SERVICE=shop-gateway
COPY --from=build /out/${SERVICE}/ /
# Listen on every interface of the container; JSON logs; the gateway file where the
# gateway image has it (compose and Kubernetes mount their own over it).
ENV SHOP_HOST=0.0.0.0 \
    LOG_FORMAT=json \
    SHOP_GATEWAY_FILE=/etc/shop/gateway.toml
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/shop"]

# One-shot tools (`stack bootstrap`): nothing to probe.
FROM runtime AS tool

# The default target: a long-running service or the gateway.
FROM runtime AS service
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/shop", "healthcheck"]
