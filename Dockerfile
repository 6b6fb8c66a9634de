# The operator's container image: the binary built in release mode, on a
# small runtime image, as a numeric non-root user (so Kubernetes can verify
# runAsNonRoot). No Docker engine runs on the machines this project is
# developed on, so this file is kept simple and conventional; build it with
#   docker build -t ghcr.io/mysql-aa/mysql-aa-operator:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so they are cached while the sources change.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY src src
COPY benches benches
COPY tests tests
COPY examples examples
RUN cargo build --release --locked --bin mysql-aa-operator \
 && strip target/release/mysql-aa-operator

# Runtime: glibc, CA certificates, nothing else; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/mysql-aa-operator /usr/local/bin/mysql-aa-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mysql-aa-operator"]
CMD ["run"]
