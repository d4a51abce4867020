// The store keys of the tests' cluster, named "test".
#pragma once

#include "cluster/cluster_keys.hpp"

namespace membrane::kernel::test {

inline const ClusterKeys kKeys("test");

}  // namespace membrane::kernel::test
