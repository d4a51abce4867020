// Entry programs on devices: the kernel's (attach_device) and a module's
// (attach_entry), owned like slots: handed over on reload, left in place by
// close(keep_slots = true), detached by the holder's close(false) and by
// forget_module, refused to anyone else while the holder runs. Also the
// kernel's delivery slot, which no module may take.
#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// tc shows a program by its kernel name: the first 15 characters.
std::string tc_name(const std::string& program) { return program.substr(0, 15); }

class EntryTest : public RegistryTest {
protected:
    // Everything below runs in namespace a, where veth0 lives.
    std::string filters() const {
        std::string output;
        run("ip netns exec " + lab.a() + " tc filter show dev veth0 ingress", &output);
        return output;
    }
    DeviceAttachment recorded(const std::string& ifname) const {
        for (const auto& device : registry->attachments()) {
            if (device.ifname == ifname) return device;
        }
        return {};
    }
    template <typename Call>
    std::string refusal(Call call) {
        try {
            call();
        } catch (const BpfError& error) {
            return error.what();
        }
        ADD_FAILURE() << "expected a BpfError";
        return {};
    }

    NetnsPair lab;
    std::unique_ptr<Registry> registry = make_core_registry();
};

TEST_F(EntryTest, TheNextGenerationTakesTheDeviceOverAndTheOldOneLeavesIt) {
    EnterNetns inside(lab.a());
    auto gen1 = registry->for_module("routing", 1);
    gen1->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_OVERLAY)));
    EXPECT_EQ(recorded("veth0"), (DeviceAttachment{"veth0", MBR_ENTRY_FROM_OVERLAY, "routing", 1}));
    EXPECT_THAT(gen1->held_devices(), ::testing::ElementsAre("veth0"));

    auto gen2 = registry->for_module("routing", 2);
    gen2->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
    EXPECT_THAT(gen1->held_devices(), IsEmpty());
    gen1->close(/*keep_slots=*/false);  // the old generation goes after the swap
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_OVERLAY)));
    EXPECT_EQ(recorded("veth0").generation, 2u);

    gen2->close(/*keep_slots=*/false);  // unload: the holder detaches
    EXPECT_THAT(filters(), IsEmpty());
    EXPECT_TRUE(registry->attachments().empty());
}

TEST_F(EntryTest, TheEntryProgramRunsOnTheDevice) {
    {
        EnterNetns inside(lab.a());
        auto module = registry->for_module("routing", 1);
        module->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
        module->close(/*keep_slots=*/true);
    }
    // A veth carries no tunnel metadata: from-overlay drops what it cannot trust.
    const auto invalid_before = sum_percpu_u64(pin(MBR_MAP_STATS), MBR_STAT_DROP_INVALID);
    std::string ping;
    EXPECT_FALSE(lab.ping_a_from_b(2, &ping)) << ping;
    EXPECT_GE(sum_percpu_u64(pin(MBR_MAP_STATS), MBR_STAT_DROP_INVALID) - invalid_before, 2u);

    {
        EnterNetns inside(lab.a());
        registry->forget_module("routing");  // the unload after a keep_slots close
    }
    EXPECT_THAT(filters(), IsEmpty());
    EXPECT_TRUE(lab.ping_a_from_b(2, &ping)) << ping;
}

TEST_F(EntryTest, CloseKeepingSlotsLeavesTheDeviceAttachedUntilForgotten) {
    EnterNetns inside(lab.a());
    auto module = registry->for_module("routing", 1);
    module->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
    module->close(/*keep_slots=*/true);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_OVERLAY)));
    EXPECT_EQ(recorded("veth0").module, "routing");

    registry->forget_module("routing");
    EXPECT_THAT(filters(), IsEmpty());
    EXPECT_TRUE(registry->attachments().empty());
}

TEST_F(EntryTest, ADeviceHeldByAnotherRunningModuleIsRefusedNamingIt) {
    EnterNetns inside(lab.a());
    auto vxlan = registry->for_module("routing-vxlan", 3);
    vxlan->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
    auto direct = registry->for_module("direct-routing", 1);

    const auto why = refusal([&] { direct->attach_entry("veth0", MBR_ENTRY_FROM_NETDEV); });
    EXPECT_THAT(why, HasSubstr("veth0"));
    EXPECT_THAT(why, HasSubstr("module routing-vxlan (generation 3)"));
    EXPECT_THAT(why, HasSubstr("direct-routing"));
    // Nor may the kernel take it while the module runs.
    EXPECT_THAT(refusal([&] { registry->attach_device("veth0"); }), HasSubstr("module routing-vxlan"));
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_OVERLAY)));

    // Once the holder is gone, the device is free.
    vxlan->close(/*keep_slots=*/false);
    direct->attach_entry("veth0", MBR_ENTRY_FROM_NETDEV);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_NETDEV)));
}

TEST_F(EntryTest, AKernelDeviceIsRefusedToModules) {
    EnterNetns inside(lab.a());
    registry->attach_device("veth0", MBR_ENTRY_FROM_ENDPOINT);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_ENDPOINT)));
    auto module = registry->for_module("routing", 1);
    const auto why = refusal([&] { module->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY); });
    EXPECT_THAT(why, HasSubstr("the kernel"));
    EXPECT_THAT(why, HasSubstr(MBR_ENTRY_FROM_ENDPOINT));
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_ENDPOINT)));

    // close(false) leaves what the module does not hold.
    module->close(false);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_ENDPOINT)));
    registry->detach_device("veth0");
    EXPECT_THAT(filters(), IsEmpty());
}

TEST_F(EntryTest, ADeviceLeftByAnEarlierRunMayBeTakenByAnyone) {
    {
        EnterNetns inside(lab.a());
        auto module = registry->for_module("routing-vxlan", 1);
        module->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
        module->close(/*keep_slots=*/true);
        registry.reset();  // agent stops
    }
    registry = make_core_registry();
    EnterNetns inside(lab.a());
    EXPECT_EQ(recorded("veth0").module, "routing-vxlan");
    auto other = registry->for_module("direct-routing", 1);
    other->attach_entry("veth0", MBR_ENTRY_FROM_NETDEV);
    EXPECT_THAT(log.text(), HasSubstr("left by an earlier run"));
    EXPECT_EQ(recorded("veth0").module, "direct-routing");
    // Generation 1 of this run is not the earlier run's generation 1.
    auto same_number = registry->for_module("routing-vxlan", 1);
    same_number->close(false);
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_NETDEV)));
}

TEST_F(EntryTest, AFailedReloadGivesTheDeviceBack) {
    EnterNetns inside(lab.a());
    auto gen1 = registry->for_module("routing", 1);
    gen1->attach_entry("veth0", MBR_ENTRY_FROM_OVERLAY);
    {
        auto gen2 = registry->for_module("routing", 2);
        gen2->attach_entry("veth0", MBR_ENTRY_FROM_NETDEV);
        gen2->close(false);  // failed start: released
    }
    EXPECT_THAT(filters(), IsEmpty());
    gen1->reclaim_stages();
    EXPECT_THAT(filters(), HasSubstr(tc_name(MBR_ENTRY_FROM_OVERLAY)));
    EXPECT_THAT(gen1->held_devices(), ::testing::ElementsAre("veth0"));
}

TEST_F(EntryTest, UnknownProgramsDevicesAndTheReservedNameAreRefused) {
    EnterNetns inside(lab.a());
    auto module = registry->for_module("routing", 1);
    EXPECT_THAT(refusal([&] { module->attach_entry("veth0", "mbr_deliver_local"); }),
                HasSubstr("not an entry program"));
    EXPECT_THAT(refusal([&] { registry->attach_device("veth0", "count_packets"); }), HasSubstr("not an entry program"));
    EXPECT_THAT(refusal([&] { module->attach_entry("nosuchdev0", MBR_ENTRY_FROM_OVERLAY); }), HasSubstr("nosuchdev0"));
    EXPECT_THAT(refusal([&] { registry->for_module("kernel", 1); }), HasSubstr("reserved"));
    EXPECT_TRUE(registry->attachments().empty());
    EXPECT_THAT(filters(), Not(HasSubstr("mbr_")));
}

TEST_F(EntryTest, NoModuleMayTakeTheKernelsDeliverySlot) {
    auto module = registry->for_module("counter", 1);
    auto& object = module->load(counter_spec());
    const auto why = refusal([&] { module->attach_stage(MBR_STAGE_DELIVERY, object, "count_packets"); });
    EXPECT_THAT(why, HasSubstr("kernel slot"));
    EXPECT_THAT(why, HasSubstr("mbr_deliver_local"));
    EXPECT_THAT(refusal([&] { module->detach_stage(MBR_STAGE_DELIVERY); }), HasSubstr("kernel"));
    EXPECT_NE(slot_id(pin(MBR_MAP_PIPELINE), MBR_STAGE_DELIVERY), 0u);
}

}  // namespace
}  // namespace membrane::kernel::test
