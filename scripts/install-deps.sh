#!/usr/bin/env bash
# Installs every Debian package Membrane needs to build, test and run its lab.
# Idempotent: safe to run again; it only installs what is missing.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang llvm
  # clang's sanitizer and libFuzzer runtimes (the fuzz build, test/fuzz)
  libclang-rt-14-dev
  # BPF
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  # C++ libraries
  libboost-dev libboost-filesystem-dev libtomlplusplus-dev
  libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libnl-3-dev libnl-route-3-dev libssl-dev
  libgtest-dev libgmock-dev googletest
  # the metrics endpoint (kernel/metrics): prometheus-cpp's core and pull
  # parts (the pull exposer embeds civetweb)
  prometheus-cpp-dev
  # the etcd client (kernel/etcd): gRPC, protobuf, and etcd's .proto files
  # with the two packages they import
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  golang-etcd-server-dev golang-github-gogo-protobuf-dev golang-github-grpc-ecosystem-grpc-gateway-dev
  # runtime and test tools
  iproute2 iputils-ping iputils-tracepath dbus-daemon dbus-bin systemd procps psmisc
  iperf3 netcat-openbsd socat containernetworking-plugins util-linux python3
  # the cluster store's tests: a real etcd, and openssl for their certificates
  etcd-server etcd-client openssl
  # the metrics test and the demo's service: a real HTTP GET (curl); promtool check metrics
  # (Debian's prometheus package is the one that ships promtool; it also
  # brings the Prometheus server and enables its unit where systemd runs:
  # `systemctl disable --now prometheus` if that is not wanted)
  curl prometheus
  # bench/service_bench.sh: kube-proxy's two modes (iptables is in Debian's
  # base; nft is not) and the plot of connect latency vs services
  iptables nftables gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
