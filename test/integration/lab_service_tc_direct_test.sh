#!/usr/bin/env bash
# integration.lab_service_tc in a direct-routing lab: the backend's replies from node2 come back
# over the underlay (mbr_from_netdev) instead of the overlay, and are translated back there.
SERVICE_TEST_ROUTING=direct
source "$(dirname "${BASH_SOURCE[0]}")/lab_service_tc_test.sh"
