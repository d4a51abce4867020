#!/usr/bin/env bash
# integration.lab_service in a direct-routing lab: the socket programs do not
# depend on the routing mode, and this shows it.
SERVICE_TEST_ROUTING=direct
source "$(dirname "${BASH_SOURCE[0]}")/lab_service_test.sh"
