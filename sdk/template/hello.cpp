// hello: the smallest useful Membrane module. It reads its config table,
// loads the BPF object it carries, fills a pipeline slot, listens to an event
// and answers a D-Bus method. Copy it and rename "hello".
//
// Everything registered through the Context (BPF objects, slots,
// subscriptions, D-Bus methods) belongs to the module's host and is released
// when the module stops, reloads or is quarantined, even if the module forgets.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <membrane/membrane.hpp>

// Declares hello_bpf() -> std::span<const std::byte>: the object that CMake's
// membrane_add_bpf_object(hello ... SYMBOL hello_bpf) embedded.
MEMBRANE_EMBEDDED_BPF(hello_bpf)

namespace {

constexpr const char* kPacketsMap = "hello_pkts_v1";
// The slot this module fills: in the custom range (MBR_STAGE_CUSTOM_FIRST..
// MBR_STAGE_MAX-1) and equal to HELLO_STAGE in bpf/hello.bpf.c, which hands
// packets on with membrane_next_stage(skb, HELLO_STAGE).
constexpr std::uint32_t kStage = MBR_STAGE_CUSTOM_FIRST;

class Hello final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        // 1. Configuration: [module.hello] in membrane.toml. Read every key you
        //    know, then finish() refuses the ones you do not, with
        //    file:line:column, so a typo fails the start instead of being ignored.
        membrane::ConfigReader config(ctx.config(), "module." + ctx.module_name());
        greeting_ = config.get<std::string>("greeting", "hello");
        const bool log_events = config.get<bool>("log_events", true);
        config.finish();

        // 2. BPF: load the embedded object. Its pinned maps are re-adopted
        //    from the previous generation (a reload keeps the counts); listed
        //    as persistent, they also survive an unload of the module.
        membrane::BpfObject& object = ctx.bpf().load({
            .name = "hello",
            .elf = hello_bpf(),
            .persistent_maps = {kPacketsMap},
        });
        packets_fd_ = object.map_fd(kPacketsMap);

        // 3. Pipeline: put the program into a custom-range slot. One atomic
        //    map update: packets see the old program or the new one, never none.
        //    Empty (module unloaded), the slot is skipped; a security stage
        //    adds membrane::EmptySlot::drop so that its absence drops instead.
        ctx.bpf().attach_stage(kStage, object, "hello_stage");

        // 4. Events: handlers run on the agent's loop thread. Keep the
        //    Subscription; dropping it unsubscribes.
        module_events_ = ctx.bus().subscribe<membrane::events::ModuleStateChanged>(
            [this, log_events, &log = ctx.log()](const membrane::events::ModuleStateChanged& event) {
                if (log_events) log.info("{}: module {} is now {}", greeting_, event.module, event.state);
            });

        // 5. D-Bus: org.membrane.Module1.Stats on /org/membrane/Agent1/modules/hello,
        //    JSON in, JSON out. Try: membranectl or
        //    busctl call org.membrane.Agent1 /org/membrane/Agent1/modules/hello \
        //        org.membrane.Module1 Stats s '{}'
        ctx.add_method("Stats", [this](const std::string&) {
            return "{\"packets\": " + std::to_string(packets()) + "}";
        });

        ctx.log().info("{}: counting packets in pipeline slot {}", greeting_, kStage);
    }

    void stop() override {
        // Only what the module made outside the Context needs releasing here.
        module_events_.reset();
        packets_fd_ = -1;
    }

    bool reconfigure(const toml::table& table) override {
        // Returning false asks the host to reload the module with the new
        // table; applying a change live is an optimisation.
        (void)table;
        return false;
    }

private:
    // Sum of every direction on every possible CPU (the map is per-CPU).
    std::uint64_t packets() const {
        const int cpus = libbpf_num_possible_cpus();
        if (cpus <= 0) throw std::runtime_error("hello: cannot count possible CPUs");
        std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
        std::uint64_t total = 0;
        for (std::uint32_t key = 0; key < 8; ++key) {
            if (bpf_map_lookup_elem(packets_fd_, &key, per_cpu.data()) != 0) {
                throw std::runtime_error(std::string("hello: cannot read ") + kPacketsMap);
            }
            for (std::uint64_t n : per_cpu) total += n;
        }
        return total;
    }

    std::string greeting_;
    int packets_fd_ = -1;
    membrane::Subscription module_events_;
};

}  // namespace

// Exports the factory, and puts the ABI descriptor in the library's
// .membrane_abi section, which the host reads from the file and checks
// before it loads the library (so before any of its code, constructors
// included, runs). The name must match the file name: "hello" -> hello.so.
MEMBRANE_MODULE(Hello, "hello")
