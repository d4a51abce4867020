#include "bpf/ownership_store.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "membrane/bpf.hpp"
#include "membrane/contract.h"
#include "state/state_file.hpp"

namespace membrane::kernel {

// The format carries a version so that a later layout can read this one.
// 1: devices were a list of names (all carrying mbr_from_netdev, the kernel's).
// 2: devices are objects naming the entry program and its holder; later
//    "fail_closed" (stage, module) was added, optional: a record without it
//    names no declarer, and an older agent ignores it. Likewise
//    "socket_hooks" (SDK 1.7), optional.
constexpr int kRecordFormat = 2;

void to_json(nlohmann::json& json, const SlotInfo& slot) {
    json = {{"stage", slot.stage},
            {"module", slot.module},
            {"generation", slot.generation},
            {"program", slot.program},
            {"program_id", slot.program_id}};
}

void from_json(const nlohmann::json& json, SlotInfo& slot) {
    json.at("stage").get_to(slot.stage);
    json.at("module").get_to(slot.module);
    json.at("generation").get_to(slot.generation);
    json.at("program").get_to(slot.program);
    json.at("program_id").get_to(slot.program_id);
}

void to_json(nlohmann::json& json, const ModulePins& pins) {
    json = {{"created", pins.created}, {"persistent", pins.persistent}};
}

void from_json(const nlohmann::json& json, ModulePins& pins) {
    json.at("created").get_to(pins.created);
    json.at("persistent").get_to(pins.persistent);
}

void to_json(nlohmann::json& json, const DeviceAttachment& device) {
    json = {{"ifname", device.ifname},
            {"program", device.program},
            {"module", device.module},
            {"generation", device.generation}};
}

void from_json(const nlohmann::json& json, DeviceAttachment& device) {
    if (json.is_string()) {  // format 1
        device = DeviceAttachment{.ifname = json.get<std::string>(), .program = MBR_ENTRY_FROM_NETDEV};
        return;
    }
    json.at("ifname").get_to(device.ifname);
    json.at("program").get_to(device.program);
    json.at("module").get_to(device.module);
    json.at("generation").get_to(device.generation);
}

void to_json(nlohmann::json& json, const SocketHookAttachment& hook) {
    json = {{"hook", hook.hook},     {"program", hook.program}, {"module", hook.module},
            {"generation", hook.generation}, {"cgroup", hook.cgroup}, {"pin", hook.pin}};
}

void from_json(const nlohmann::json& json, SocketHookAttachment& hook) {
    json.at("hook").get_to(hook.hook);
    json.at("program").get_to(hook.program);
    json.at("module").get_to(hook.module);
    json.at("generation").get_to(hook.generation);
    json.at("cgroup").get_to(hook.cgroup);
    json.at("pin").get_to(hook.pin);
}

namespace {

nlohmann::json to_document(const OwnershipRecord& record) {
    nlohmann::json slots = nlohmann::json::array();
    for (const auto& [stage, slot] : record.slots) slots.push_back(slot);
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& [ifname, device] : record.devices) devices.push_back(device);
    nlohmann::json fail_closed = nlohmann::json::array();
    for (const auto& [stage, module] : record.fail_closed_by) {
        fail_closed.push_back({{"stage", stage}, {"module", module}});
    }
    nlohmann::json socket_hooks = nlohmann::json::array();
    for (const auto& [name, hook] : record.socket_hooks) socket_hooks.push_back(hook);
    return {{"format", kRecordFormat},
            {"kernel_pins", record.kernel_pins},
            {"modules", record.modules},
            {"devices", devices},
            {"slots", slots},
            {"fail_closed", fail_closed},
            {"socket_hooks", socket_hooks}};
}

OwnershipRecord from_document(const nlohmann::json& json) {
    const int format = json.at("format").get<int>();
    if (format != 1 && format != kRecordFormat) {
        throw std::runtime_error(fmt::format("unknown format {}", json.at("format").dump()));
    }
    OwnershipRecord record;
    json.at("kernel_pins").get_to(record.kernel_pins);
    json.at("modules").get_to(record.modules);
    for (const auto& device_json : json.at("devices")) {
        auto device = device_json.get<DeviceAttachment>();
        record.devices[device.ifname] = device;
    }
    for (const auto& slot_json : json.at("slots")) {
        auto slot = slot_json.get<SlotInfo>();
        record.slots[slot.stage] = slot;
    }
    if (json.contains("fail_closed")) {
        for (const auto& item : json.at("fail_closed")) {
            record.fail_closed_by[item.at("stage").get<std::uint32_t>()] = item.at("module").get<std::string>();
        }
    }
    if (json.contains("socket_hooks")) {
        for (const auto& item : json.at("socket_hooks")) {
            auto hook = item.get<SocketHookAttachment>();
            record.socket_hooks[hook.hook] = hook;
        }
    }
    return record;
}

}  // namespace

OwnershipStore::OwnershipStore(std::filesystem::path file, spdlog::logger& log) : file_(std::move(file)), log_(log) {
    const auto document = read_state_file(file_);
    if (!document) return;  // first start
    try {
        record_ = from_document(*document);
    } catch (const std::exception& error) {
        throw corrupt_record(file_, std::string("not an ownership record the agent wrote (") + error.what() + ")");
    }
    log_.debug("ownership record {}: {} module(s), {} slot(s), {} device(s)", file_.string(), record_.modules.size(),
               record_.slots.size(), record_.devices.size());
}

void OwnershipStore::save() const {
    try {
        write_state_file(file_, to_document(record_));
    } catch (const StateError& error) {
        throw BpfError(error.what());  // the registry's callers handle BpfError
    }
}

void OwnershipStore::erase() {
    record_ = {};
    std::error_code ignored;
    std::filesystem::remove(file_, ignored);
}

}  // namespace membrane::kernel
