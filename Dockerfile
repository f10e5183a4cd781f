# syntax=docker/dockerfile:1
# tasklease image: both binaries (tasklease-webhook, tasklease-operator) on Debian bookworm,
# running as the unprivileged user 65532. The Helm chart (helm/tasklease) picks the binary with
# `command:`.
#
#   docker build -t tasklease:0.1.0 .                 # the chart's default image name
#   kind load docker-image tasklease:0.1.0            # kind: no registry needed
#   helm install tasklease helm/tasklease -n tasklease-system --create-namespace
# Elsewhere, tag and push it to your registry and set image.repository (docs/install.md).

# ---- build: the C++ toolchain and -dev packages (scripts/deps.sh's build part) ----
FROM debian:bookworm AS build
# Keep in step with the "C++ toolchain and build" and "C++ libraries" groups of scripts/deps.sh;
# the test, e2e and benchmark tools there are not needed to build the binaries. GoogleTest is:
# the top-level CMakeLists.txt looks for it at configure time.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      g++ cmake ninja-build make pkg-config ca-certificates \
      libcurl4-openssl-dev libssl-dev libboost-dev libboost-system-dev nlohmann-json3-dev \
      libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev \
      libsimdjson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" --target tasklease-webhook tasklease-operator \
 && strip /build/bin/tasklease-webhook /build/bin/tasklease-operator

# ---- runtime: only the shared libraries the binaries link (apt pulls in theirs) ----
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libcurl4 libssl3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libsimdjson14 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
COPY --from=build /build/bin/tasklease-webhook /build/bin/tasklease-operator /usr/local/bin/
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
LABEL org.opencontainers.image.title="tasklease" \
      org.opencontainers.image.description="Just-in-time identities for AI-agent tasks on Kubernetes: admission webhook and operator"
# No entrypoint: the chart runs /usr/local/bin/tasklease-webhook or /usr/local/bin/tasklease-operator.
CMD ["/usr/local/bin/tasklease-webhook", "--help"]
