#include "bpf/pipeline_slots.hpp"

#include <cerrno>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "membrane/contract.h"
#include "membrane/stage_names.hpp"

namespace membrane::kernel {

std::string describe_stage(std::uint32_t stage) { return fmt::format("{} ({})", stage, stage_name(stage)); }

void fill_slot(int pipeline_fd, std::uint32_t stage, int program_fd) {
    const std::uint32_t key = stage;
    const std::uint32_t value = static_cast<std::uint32_t>(program_fd);
    if (const int err = bpf_map_update_elem(pipeline_fd, &key, &value, BPF_ANY); err) {
        throw_bpf_error(fmt::format("cannot fill pipeline stage {}", describe_stage(stage)), err);
    }
}

bool empty_slot(int pipeline_fd, std::uint32_t stage) {
    const std::uint32_t key = stage;
    const int err = bpf_map_delete_elem(pipeline_fd, &key);
    if (err == -ENOENT) return false;
    if (err) throw_bpf_error(fmt::format("cannot empty pipeline stage {}", describe_stage(stage)), err);
    return true;
}

std::optional<std::uint32_t> slot_program_id(int pipeline_fd, std::uint32_t stage) {
    const std::uint32_t key = stage;
    std::uint32_t id = 0;
    const int err = bpf_map_lookup_elem(pipeline_fd, &key, &id);
    if (err == -ENOENT) return std::nullopt;
    if (err) throw_bpf_error(fmt::format("cannot read pipeline stage {}", describe_stage(stage)), err);
    return id;
}

std::uint32_t program_id(int program_fd) {
    bpf_prog_info info{};
    std::uint32_t length = sizeof(info);
    if (const int err = bpf_obj_get_info_by_fd(program_fd, &info, &length); err) {
        throw_bpf_error("cannot read program info", err);
    }
    return info.id;
}

void set_empty_slot_verdict(int verdicts_fd, std::uint32_t stage, EmptySlot verdict) {
    const std::uint32_t key = stage;
    const auto value = static_cast<std::uint32_t>(verdict);
    if (const int err = bpf_map_update_elem(verdicts_fd, &key, &value, BPF_ANY); err) {
        throw_bpf_error(fmt::format("cannot set the empty-slot verdict of pipeline stage {}", describe_stage(stage)),
                        err);
    }
}

EmptySlot empty_slot_verdict(int verdicts_fd, std::uint32_t stage) {
    const std::uint32_t key = stage;
    std::uint32_t value = MBR_STAGE_PASS_THROUGH;
    if (const int err = bpf_map_lookup_elem(verdicts_fd, &key, &value); err) {
        throw_bpf_error(fmt::format("cannot read the empty-slot verdict of pipeline stage {}", describe_stage(stage)),
                        err);
    }
    // Anything but fail-closed is skipped by the datapath (pipeline.h).
    return value == MBR_STAGE_FAIL_CLOSED ? EmptySlot::drop : EmptySlot::pass_through;
}

const char* describe_empty_slot(EmptySlot verdict) {
    return verdict == EmptySlot::drop ? "dropped (fail-closed)" : "passed through";
}

}  // namespace membrane::kernel
