#!/usr/bin/env bash
# membrane-cni given bad input, as a runtime could hand it: bytes that are
# not UTF-8 in the config and in the CNI_* variables, a non-ASCII container
# id, and every config of the fuzz corpus (test/fuzz/corpus/cni_network_config).
# Each must be answered with the spec's error object (cniVersion, code, msg)
# on stdout and a non-zero exit, never a crash (it once aborted on a single
# byte 0xcb). Needs no daemon: ADD uses a netns path that does not exist, so
# the plugin stops before touching any network.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init

CNI_BIN="$MEMBRANE_BUILD_DIR/cni/membrane-cni"
[[ -x "$CNI_BIN" ]] || harness_fail "no membrane-cni at $CNI_BIN (is the build complete?)"
MISSING_NETNS="$HARNESS_TMP/no-such-netns"
GOOD_CONF='{"cniVersion": "1.0.0", "name": "membrane-test", "type": "membrane"}'

# cni_raw COMMAND CONTAINER_ID ARGS STDIN_FILE: the plugin's stdout; its exit status.
cni_raw() {
  env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="$MISSING_NETNS" CNI_IFNAME=eth0 \
    CNI_ARGS="$3" CNI_PATH="$MEMBRANE_BUILD_DIR/cni" "$CNI_BIN" <"$4"
}

# expect_error CODE MSG_PART WHAT COMMAND CONTAINER_ID ARGS STDIN_BYTES:
# a non-zero exit that is not a signal, and the error object with CODE
# (any code when CODE is "any") whose msg contains MSG_PART.
expect_error() {
  local want=$1 part=$2 what=$3 input="$HARNESS_TMP/stdin" out rc=0
  printf '%s' "$7" >"$input"
  out=$(cni_raw "$4" "$5" "$6" "$input") || rc=$?
  ((rc != 0)) || harness_fail "$what: succeeded; output: $out"
  ((rc < 128)) || harness_fail "$what: killed by signal $((rc - 128)) (a crash); output: $out"
  python3 - "$out" "$want" "$part" <<'PY' || harness_fail "$what: not the expected CNI error object: $out"
import json, sys
e = json.loads(sys.argv[1])
assert isinstance(e["code"], int) and e["msg"] and "cniVersion" in e, e
assert sys.argv[2] == "any" or e["code"] == int(sys.argv[2]), e["code"]
assert sys.argv[3] in e["msg"], e["msg"]
PY
  echo "ok: $what -> exit $rc, $(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(e["code"], e["msg"])' "$out")"
}

bad=$'\xcb'
expect_error 6 "'name' holds byte 0xcb" "invalid UTF-8 in the network name" \
  ADD pod1 IgnoreUnknown=1 "{\"cniVersion\": \"1.0.0\", \"name\": \"net$bad\", \"type\": \"membrane\"}"
expect_error 6 "'args.labels[0].value' holds" "invalid UTF-8 in a label of args" \
  ADD pod1 IgnoreUnknown=1 \
  "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"type\": \"membrane\", \"args\": {\"labels\": [{\"key\": \"k\", \"value\": \"v$bad\"}]}}"
expect_error 6 "not valid UTF-8" "invalid UTF-8 in text that is not JSON either" \
  ADD pod1 IgnoreUnknown=1 "{\"name\": \"net$bad, \"type\""
expect_error 4 "CNI_ARGS is not valid UTF-8" "invalid UTF-8 in CNI_ARGS" \
  ADD pod1 "K8S_POD_NAME=web$bad;IgnoreUnknown=1" "$GOOD_CONF"
expect_error 4 "CNI_CONTAINERID is not valid UTF-8" "invalid UTF-8 in CNI_CONTAINERID" \
  ADD "pod$bad" IgnoreUnknown=1 "$GOOD_CONF"
expect_error 4 "byte 0xc3" "a container id with an accented letter (valid UTF-8, refused)" \
  ADD "podé" IgnoreUnknown=1 "$GOOD_CONF"
expect_error 4 "CNI_COMMAND is not valid UTF-8" "invalid UTF-8 in CNI_COMMAND" \
  "ADD$bad" pod1 IgnoreUnknown=1 "$GOOD_CONF"
expect_error 3 "does not exist" "a valid config reaches the netns check (the test's own sanity)" \
  ADD pod1 IgnoreUnknown=1 "$GOOD_CONF"

# The fuzz corpus: every seed and every kept crash input is answered.
corpus="$MEMBRANE_SOURCE_DIR/test/fuzz/corpus/cni_network_config"
count=0
for seed in "$corpus"/*; do
  [[ -f "$seed" ]] || continue
  out=$(cni_raw ADD pod1 IgnoreUnknown=1 "$seed") && harness_fail "corpus $(basename "$seed"): ADD succeeded: $out"
  rc=$?
  ((rc < 128)) || harness_fail "corpus $(basename "$seed"): killed by signal $((rc - 128)); output: $out"
  python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert isinstance(e["code"], int) and e["msg"]' "$out" ||
    harness_fail "corpus $(basename "$seed"): not a CNI error object: $out"
  count=$((count + 1))
done
((count > 0)) || harness_fail "no fuzz corpus at $corpus"
echo "ok: $count corpus configs each answered with a CNI error object"
