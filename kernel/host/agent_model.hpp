// The kernel's model as the module host hands it out (read-only to modules).
#pragma once

#include <filesystem>
#include <string>

#include "membrane/model.hpp"

namespace membrane::kernel {

class AgentModel final : public membrane::Model {
public:
    AgentModel(std::string node_name, std::filesystem::path pin_dir)
        : node_name_(std::move(node_name)), pin_dir_(std::move(pin_dir)) {}

    const std::string& node_name() const override { return node_name_; }
    const std::filesystem::path& pin_dir() const override { return pin_dir_; }

private:
    std::string node_name_;
    std::filesystem::path pin_dir_;
};

}  // namespace membrane::kernel
