#!/usr/bin/env bash
# integration.lab_service_outside in a direct-routing lab: the DNATed packet
# to another node's backend is routed by direct-routing's FIB stage.
SERVICE_TEST_ROUTING=direct
source "$(dirname "${BASH_SOURCE[0]}")/lab_service_outside_test.sh"
