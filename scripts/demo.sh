#!/usr/bin/env bash
# The README's main job: installs what is missing, builds, then starts
# membraned with the default configuration (paths moved into a throw-away
# network namespace, a private bpffs and a private D-Bus) and shows what an
# operator sees: `membranectl status`, a third-party module loaded, counting
# real packets, hot-reloaded under traffic. Everything it made is removed at
# the end. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ $EUID -ne 0 ]]; then
  echo "scripts/demo.sh: run as root (it loads BPF and creates network namespaces)" >&2
  exit 2
fi

scripts/install-deps.sh
scripts/build.sh
export MEMBRANE_SOURCE_DIR=$root MEMBRANE_BUILD_DIR=$root/build MEMBRANE_TEST_PREFIX=$root/build/test-install
# Installs the SDK into a prefix and builds the counter module out of tree against it.
bash test/integration/setup_install_sdk.sh >/dev/null

source test/lib/harness.sh
harness_init
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

pod=$(harness_netns pod)
node=$(harness_netns node)
harness_veth "$pod" eth0 "$node" eth0 10.200.1.2/24 10.200.1.1/24
harness_dbus
bpffs=$(harness_bpffs bpffs)

# The shipped default configuration, with its paths moved into this demo.
config="$HARNESS_TMP/membrane.toml"
sed -e "s|^state_dir = .*|state_dir = \"$HARNESS_TMP/state\"|" \
    -e "s|^runtime_dir = .*|runtime_dir = \"$HARNESS_TMP/run\"|" \
    -e "s|^bpffs_root = .*|bpffs_root = \"$bpffs\"|" \
    -e "s|^devices = .*|devices = [\"eth0\"]|" \
    -e "s|^bus = .*|bus = \"$MEMBRANE_DBUS_ADDRESS\"|" \
    -e "s|^\[agent\]|[agent]\nnode_name = \"demo-node\"\nmodule_dir = \"$MEMBRANE_TEST_PREFIX/test-modules\"|" \
    configs/membrane.toml >"$config"

say "membraned --check-config"
build/kernel/membraned --check-config "$config"

say "start membraned in network namespace $node"
harness_daemon "$node" "$config"
harness_ctl status

say "load the third-party 'counter' module (built out of tree against the installed SDK)"
harness_ctl module load counter
harness_ctl module list

say "200 packets from the pod namespace cross the entry program and the counter's slot"
ip netns exec "$pod" ping -q -c 200 -i 0.005 10.200.1.1 | tail -2
harness_ctl module call counter Count

say "hot reload x5 under a steady flow: no packet lost, the count survives"
ip netns exec "$pod" ping -q -c 1000 -i 0.002 10.200.1.1 >"$HARNESS_TMP/ping.txt" &
ping_pid=$!
for _ in 1 2 3 4 5; do sleep 0.3; harness_ctl module reload counter; done
wait "$ping_pid"; tail -2 "$HARNESS_TMP/ping.txt"
harness_ctl module list
harness_ctl module call counter Count

say "done: cleaning up namespaces, pins and processes"
