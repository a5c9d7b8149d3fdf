# One image holds every binary of the shop; each container runs one of them.
# docker build -t shop . && docker run --rm shop shop-user keygen

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace --bins \
 && mkdir -p /out \
 && cp target/release/shop-* target/release/stack /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 shop
COPY --from=build /out/ /usr/local/bin/
USER shop
ENV SHOP_HOST=0.0.0.0 LOG_FORMAT=json
