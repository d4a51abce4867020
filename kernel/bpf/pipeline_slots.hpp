// The pipeline prog array seen from user space: one slot per stage, filled
// and emptied with single map updates so that packets see the old or the new
// program, never none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "membrane/bpf.hpp"

namespace membrane::kernel {

// "2 (egress-policy)", "9 (custom)": for log lines and errors.
std::string describe_stage(std::uint32_t stage);

void fill_slot(int pipeline_fd, std::uint32_t stage, int program_fd);
// Returns false if the slot was already empty.
bool empty_slot(int pipeline_fd, std::uint32_t stage);
// The id of the program in the slot (a prog array lookup from user space
// yields the program id), or nothing if the slot is empty.
std::optional<std::uint32_t> slot_program_id(int pipeline_fd, std::uint32_t stage);

std::uint32_t program_id(int program_fd);

// The stage's empty-slot verdict in the verdict map (mbr_stage_verdicts_v1).
void set_empty_slot_verdict(int verdicts_fd, std::uint32_t stage, EmptySlot verdict);
EmptySlot empty_slot_verdict(int verdicts_fd, std::uint32_t stage);
// "pass through", "dropped (fail-closed)": what packets meet at an empty slot.
const char* describe_empty_slot(EmptySlot verdict);

}  // namespace membrane::kernel
