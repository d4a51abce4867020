#!/usr/bin/env bash
# [sources] manifests_dir through the daemon, as a GitOps-style bare host
# uses it: the folder's files are applied at start (each object annotated
# with its file); a file dropped in is applied within seconds; a broken file
# is reported by `membranectl status` and the log, naming file, document,
# line and field, while its last good version stays and other files keep
# working; an object taken out of a file is deleted; a file removed while the
# agent is down has its objects deleted at the next start.
set -euo pipefail
source "$MEMBRANE_SOURCE_DIR/test/lib/harness.sh"
harness_init
node=$(harness_netns node)
harness_dbus
mkdir -p "$HARNESS_TMP/modules" "$HARNESS_TMP/manifests"
folder="$HARNESS_TMP/manifests"
config="$HARNESS_TMP/membrane.toml"
harness_write_config "$config" node-mf "$HARNESS_TMP/modules" '[]' '[]' "[sources]
manifests_dir = \"$folder\""

names() { harness_ctl -o json get ns | python3 -c 'import json,sys; print(" ".join(d["metadata"]["name"] for d in json.load(sys.stdin)))'; }
names_are() { [[ "$(names)" == "$1" ]]; }
# Written the way a checkout or an editor replaces a file: renamed in whole.
put() { cat >"$HARNESS_TMP/.writing" && mv "$HARNESS_TMP/.writing" "$folder/$1"; }
namespace() { printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    team: %s\n' "$1" "${2:-a}"; }

{ namespace shop; echo ---; namespace bank; } | put shop.yaml
namespace notes | put notes.txt  # not a manifest file name: ignored
harness_daemon "$node" "$config"
harness_retry 5 names_are "bank shop" || harness_fail "the folder's objects at start: $(names)"
harness_ctl -o json get ns shop | grep_quiet "\"membrane.io/manifests-file\":\"$folder/shop.yaml\"" ||
    harness_fail "shop does not name its file: $(harness_ctl -o json get ns shop)"
status=$(harness_ctl status)
grep -q "^Manifests:  $folder: 1 file applied$" <<<"$status" || harness_fail "status: $status"
echo "ok: the folder applied at start, each object naming its file"

namespace tools | put tools.yaml
harness_retry 10 names_are "bank shop tools" || harness_fail "a new file was not applied: $(names)"
echo "ok: a file dropped in is applied"

# Broken: an invalid label value in document 2. Reported whole, last good version kept.
{ namespace shop b; echo ---; namespace bank "front end"; } | put shop.yaml
broken() { harness_ctl status | grep -q "document 2 (line 13): metadata.labels.team: \"front end\" must be"; }
harness_retry 10 broken || harness_fail "the broken file is not reported: $(harness_ctl status)"
status=$(harness_ctl status)
grep -q "^Manifests:  $folder: 1 file applied, 1 not$" <<<"$status" || harness_fail "status: $status"
grep -q "\[manifests\] $folder/shop.yaml: document 2 (line 13)" "$HARNESS_DAEMON_LOG" || harness_fail "not in the log"
harness_ctl -o json get ns shop | grep_quiet '"team":"a"' || harness_fail "shop lost its last good version"
namespace misc | put misc.yaml
harness_retry 10 names_are "bank misc shop tools" || harness_fail "with a broken file, others stopped working: $(names)"
echo "ok: a broken file reported ($(grep "line 13" <<<"$status" | sed 's/^ *//')), the rest keeps working"

# Fixed, without bank: shop configured, bank deleted, the problem gone.
namespace shop b | put shop.yaml
harness_retry 10 names_are "misc shop tools" || harness_fail "bank was not deleted: $(names)"
harness_ctl -o json get ns shop | grep_quiet '"team":"b"' || harness_fail "shop was not configured"
status=$(harness_ctl status)
grep -q "^Manifests:  $folder: 3 files applied$" <<<"$status" || harness_fail "after the fix, status: $status"
echo "ok: fixed file applied, the object it no longer declares deleted"

# Removed while the agent is down: deleted at start. An object applied over
# by membranectl is no longer the folder's: it stays.
harness_ctl apply -f - >/dev/null <<<"$(namespace misc z)" || harness_fail "apply over misc failed"
harness_stop_daemon || harness_fail "membraned did not stop cleanly"
rm "$folder/tools.yaml" "$folder/misc.yaml"
harness_daemon "$node" "$config"
harness_retry 5 names_are "misc shop" || harness_fail "after a restart without tools.yaml and misc.yaml: $(names)"
harness_ctl -o json get ns misc | grep_quiet '"team":"z"' || harness_fail "misc, applied over, was changed"
harness_stop_daemon || harness_fail "membraned did not stop cleanly"
echo "ok: a file removed while the agent was down: its objects deleted at start, except one applied over since"
