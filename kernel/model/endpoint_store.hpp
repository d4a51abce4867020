// The endpoints' record in state_dir (endpoints.json), rewritten atomically
// on every change, read back at start.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

struct EndpointRecord {
    std::uint64_t next_id = 1;
    std::vector<EndpointInfo> endpoints;
    std::map<std::uint64_t, std::vector<ContainerPort>> ports;  // by endpoint id; none for most
};

// An empty record when the file does not exist; StateError when it is corrupt.
EndpointRecord load_endpoint_record(const std::filesystem::path& path);
void save_endpoint_record(const std::filesystem::path& path, const EndpointRecord& record);  // StateError

}  // namespace membrane::kernel
