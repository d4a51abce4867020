// The agent's figures as Prometheus metric families: every name, label and
// help text of the endpoint is here (and in the README's metrics section).
#pragma once

#include <vector>

#include <prometheus/metric_family.h>

#include "metrics/agent_figures.hpp"

namespace membrane::kernel {

// Names start with membrane_; counters end in _total; an enumerated state is
// a gauge per state, 1 for the current one and 0 for the others, so that a
// query need not know which states exist. Families without figures (the
// datapath when its map is unreadable, the kvstore without one) are left out.
std::vector<prometheus::MetricFamily> metric_families(const AgentFigures& figures);

}  // namespace membrane::kernel
