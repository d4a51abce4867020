#!/usr/bin/env bash
# Applied objects on a node without a cluster store, through membranectl as a
# user types it: `apply -f` of a multi-document file creates each object and
# says so; applied again, unchanged; a file with one bad document is refused
# naming the document, line and field path, and none of its objects is
# applied; `get` lists them (table and JSON); they survive an agent restart
# (state_dir/objects.json); `delete` removes one, and a second delete is
# NotFound; an unknown kind is refused with the kinds Membrane keeps; a
# module loaded after the start reads them from the model.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init
node=$(harness_netns node)
harness_dbus
mkdir -p "$HARNESS_TMP/modules"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-obj "$HARNESS_TMP/modules" '[]' '[]'
harness_daemon "$node" "$config"

names() { harness_ctl -o json get ns | python3 -c 'import json,sys; print(" ".join(d["metadata"]["name"] for d in json.load(sys.stdin)))'; }

cat >"$HARNESS_TMP/shop.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    team: payments
---
apiVersion: v1
kind: Namespace
metadata:
  name: bank
YAML
out=$(harness_ctl apply -f "$HARNESS_TMP/shop.yaml") || harness_fail "apply failed: $out"
[[ "$out" == $'namespace/shop created\nnamespace/bank created' ]] || harness_fail "apply said: $out"
out=$(harness_ctl apply -f "$HARNESS_TMP/shop.yaml")
[[ "$out" == $'namespace/shop unchanged\nnamespace/bank unchanged' ]] || harness_fail "a second apply said: $out"

# One bad document: refused with where and why, and nothing of the file applied.
cat >"$HARNESS_TMP/bad.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: fresh
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    team: "front end"
YAML
if out=$(harness_ctl apply -f "$HARNESS_TMP/bad.yaml" 2>&1); then harness_fail "a bad manifest was applied: $out"; fi
[[ "$out" == *"org.membrane.Error.InvalidArgument: $HARNESS_TMP/bad.yaml: document 2 (line 11): metadata.labels.team: \"front end\" must be"* ]] ||
    harness_fail "the refusal does not name document, line and field: $out"
[[ "$(names)" == "bank shop" ]] || harness_fail "the bad file changed the objects: $(names)"
harness_ctl -o json get ns shop | grep_quiet '"team":"payments"' || harness_fail "shop's labels changed"
echo "ok: apply, apply again (unchanged), a bad file refused whole: $out"

# Kept across a restart, from the state directory.
harness_stop_daemon || harness_fail "membraned did not stop cleanly"
[[ -s "$HARNESS_TMP/node-node-obj/state/objects.json" ]] || harness_fail "no state/objects.json after the apply"
harness_daemon "$node" "$config"
[[ "$(names)" == "bank shop" ]] || harness_fail "after a restart the objects are: $(names)"
table=$(harness_ctl get ns)
grep -q "^Namespace  shop  team=payments$" <<<"$table" || harness_fail "get ns (table): $table"

out=$(harness_ctl delete ns bank) || harness_fail "delete failed: $out"
[[ "$(names)" == "shop" ]] || harness_fail "after the delete: $(names)"
if out=$(harness_ctl delete ns bank 2>&1); then harness_fail "a second delete succeeded: $out"; fi
[[ "$out" == *"org.membrane.Error.NotFound: Namespace bank does not exist"* ]] || harness_fail "second delete: $out"
if out=$(harness_ctl get pods 2>&1); then harness_fail "get pods succeeded: $out"; fi
[[ "$out" == *"'pods' is not a kind Membrane keeps (it keeps: Namespace, NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Service, EndpointSlice)"* ]] || harness_fail "get pods: $out"
harness_stop_daemon || harness_fail "membraned did not stop cleanly"
echo "ok: objects kept across a restart; delete, NotFound, unknown kinds refused"

# A module loaded after the start reads the objects from the model (SDK 1.3).
harness_write_config "$config" node-obj "$MEMBRANE_TEST_PREFIX/test-modules" '[]' '[]'
harness_daemon "$node" "$config"
harness_ctl module load counter >/dev/null || harness_fail "load counter failed"
out=$(harness_ctl -o json module call counter Objects | python3 -c 'import json,sys; print(json.load(sys.stdin))') ||
    harness_fail "counter Objects failed"
[[ "$out" == "['Namespace shop']" ]] || harness_fail "a module loaded late reads the objects as: $out"
harness_stop_daemon || harness_fail "membraned did not stop cleanly"
echo "ok: a module loaded after the start reads the applied objects from the model"
