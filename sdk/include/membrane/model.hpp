// The read-only view of the agent's model that modules get. The kernel owns
// the model; modules learn of changes through events on the bus.
#pragma once

#include <filesystem>
#include <string>

#include "membrane/api.hpp"

namespace membrane {

class MEMBRANE_SDK_API Model {
public:
    virtual ~Model() = default;

    // This node's name (agent.node_name).
    virtual const std::string& node_name() const = 0;
    // Where the shared maps are pinned: <bpffs_root>/membrane/<node>/.
    virtual const std::filesystem::path& pin_dir() const = 0;
};

}  // namespace membrane
