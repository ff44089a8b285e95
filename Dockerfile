# syntax=docker/dockerfile:1
# entente: the CLI and the Kubernetes controller in one static-ish binary on a distroless runtime.
#   docker build -t entente .
#   docker run --rm entente plan -f /manifests
FROM rust:1 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin entente \
 && cp target/release/entente /entente

# glibc and libgcc, no shell, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /entente /usr/local/bin/entente
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/entente"]
CMD ["controller"]
