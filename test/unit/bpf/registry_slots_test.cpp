// Pipeline slots: filling, handing over between generations of one module,
// refusing other modules, and what close() leaves behind.
#include "registry_fixture.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SlotTest : public RegistryTest {
protected:
    std::uint32_t slot(std::uint32_t stage) const { return slot_id(pin(MBR_MAP_PIPELINE), stage); }
    std::unique_ptr<Registry> registry = make_core_registry();
};

TEST_F(SlotTest, AttachStageFillsTheSlotWithTheProgram) {
    auto module = registry->for_module("counter", 1);
    auto& object = module->load(counter_spec());

    module->attach_stage(kCountStage, object, "count_packets");

    const auto id = program_id_of(object.program_fd("count_packets"));
    EXPECT_EQ(slot(kCountStage), id);
    EXPECT_THAT(module->held_stages(), ElementsAre(kCountStage));
    EXPECT_THAT(module_slots(*registry), ElementsAre(SlotInfo{kCountStage, "counter", 1, "count_packets", id}));
    EXPECT_THAT(log.text(), HasSubstr("fills the empty slot"));
}

TEST_F(SlotTest, TheNextGenerationTakesTheSlotOverAndTheOldOneLeavesIt) {
    auto gen1 = registry->for_module("counter", 1);
    auto& object1 = gen1->load(counter_spec());
    gen1->attach_stage(kCountStage, object1, "count_packets");

    auto gen2 = registry->for_module("counter", 2);
    auto& object2 = gen2->load(counter_spec());
    gen2->attach_stage(kCountStage, object2, "count_packets");
    const auto gen2_id = program_id_of(object2.program_fd("count_packets"));
    EXPECT_EQ(slot(kCountStage), gen2_id);
    EXPECT_THAT(gen1->held_stages(), IsEmpty());
    EXPECT_THAT(log.text(), HasSubstr("replaces counter gen 1"));

    gen1->close(/*keep_slots=*/false);  // the old generation goes after the swap
    EXPECT_EQ(slot(kCountStage), gen2_id);
    EXPECT_THAT(gen2->held_stages(), ElementsAre(kCountStage));

    gen2->close(/*keep_slots=*/false);  // unload: the holder empties its slot
    EXPECT_EQ(slot(kCountStage), 0u);
    EXPECT_THAT(module_slots(*registry), IsEmpty());
}

// A failed reload: the running generation takes the slot back with the
// verdict it declared; the verdict outlives the module (forget_module).
TEST_F(SlotTest, TheEmptySlotVerdictIsTakenBackWithTheSlotAndOutlivesTheModule) {
    auto gen1 = registry->for_module("guard", 1);
    gen1->attach_stage(kCountStage, gen1->load(counter_spec()), "count_packets", EmptySlot::drop);
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));
    EXPECT_THAT(log.text(), HasSubstr("when empty, packets are dropped (fail-closed)"));

    auto gen2 = registry->for_module("guard", 2);
    gen2->attach_stage(kCountStage, gen2->load(counter_spec()), "count_packets");  // pass-through
    EXPECT_THAT(registry->fail_closed_stages(), IsEmpty()) << "the holder decides";
    gen1->reclaim_stages();  // gen2 failed to start
    EXPECT_THAT(gen1->held_stages(), ElementsAre(kCountStage));
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));
    gen2->close(false);
    EXPECT_NE(slot(kCountStage), 0u) << "gen2 gave the slot back, so closing it releases nothing";

    gen1->close(false);
    registry->forget_module("guard");
    EXPECT_EQ(slot(kCountStage), 0u);
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));
    EXPECT_THAT(log.text(), HasSubstr("packets are dropped (fail-closed) until a module fills it"));
}

// The verdict follows the module that declared it: once a generation that
// no longer fills a fail-closed stage is the module's running one (the
// counter fixture reconfigured fail_closed true -> false and reloaded), the
// stage passes through again, before the old generation empties it.
TEST_F(SlotTest, ARunningGenerationThatNoLongerFillsAFailClosedStageMakesItPassThrough) {
    constexpr std::uint32_t kOtherStage = kCountStage + 1;
    auto gen1 = registry->for_module("guard", 1);
    gen1->attach_stage(kCountStage, gen1->load(counter_spec()), "count_packets", EmptySlot::drop);
    ASSERT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));

    auto gen2 = registry->for_module("guard", 2);
    gen2->attach_stage(kOtherStage, gen2->load(counter_spec()), "count_packets");
    gen2->settle_empty_slots();  // gen2 started: the swap
    EXPECT_THAT(registry->fail_closed_stages(), IsEmpty()) << "relaxed while gen1 still fills it";
    EXPECT_NE(slot(kCountStage), 0u);
    EXPECT_THAT(log.text(), HasSubstr("no longer fail-closed: guard gen 2 does not fill it"));
    gen1->close(false);
    EXPECT_EQ(slot(kCountStage), 0u);
    EXPECT_THAT(log.text(), HasSubstr("packets are passed through until a module fills it"));

    gen2->close(false);  // and unloaded: nothing drops
    registry->forget_module("guard");
    EXPECT_THAT(registry->fail_closed_stages(), IsEmpty());
}

// A generation that fills the stage again keeps it fail-closed.
TEST_F(SlotTest, ARunningGenerationThatStillDeclaresTheStageKeepsIt) {
    auto gen1 = registry->for_module("guard", 1);
    gen1->attach_stage(kCountStage, gen1->load(counter_spec()), "count_packets", EmptySlot::drop);
    auto gen2 = registry->for_module("guard", 2);
    gen2->attach_stage(kCountStage, gen2->load(counter_spec()), "count_packets", EmptySlot::drop);
    gen2->settle_empty_slots();
    gen1->close(false);
    gen2->close(false);
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));
}

// Quarantined or unloaded, the module leaves its stage dropping (that is the
// point); loaded again without declaring it, across a restart too (the
// declarer is in the ownership record), the stage passes again.
TEST_F(SlotTest, AModuleBackWithoutTheFailClosedStageRelaxesWhatItLeftDropping) {
    auto gen1 = registry->for_module("guard", 1);
    gen1->attach_stage(kCountStage, gen1->load(counter_spec()), "count_packets", EmptySlot::drop);
    gen1->settle_empty_slots();
    gen1->close(false);  // quarantine
    registry->forget_module("guard");  // unload --force
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage));

    registry.reset();
    registry = make_core_registry();
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage)) << "a restart keeps it";
    auto other = registry->for_module("other", 1);
    other->attach_stage(kCountStage + 1, other->load(counter_spec()), "count_packets");
    other->settle_empty_slots();
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kCountStage)) << "another module relaxes nothing";

    auto gen2 = registry->for_module("guard", 2);
    gen2->attach_stage(kCountStage + 2, gen2->load(counter_spec()), "count_packets");
    gen2->settle_empty_slots();
    EXPECT_THAT(registry->fail_closed_stages(), IsEmpty());
}

// After a restart, the slots the previous run left filled stay filled until
// their module starts again; a stage its new generation does not take is
// then emptied, so the old run's program stops running it.
TEST_F(SlotTest, AStageLeftByAnEarlierRunThatTheModuleNoLongerFillsIsEmptied) {
    constexpr std::uint32_t kOtherStage = kCountStage + 1;
    auto before = registry->for_module("guard", 1);
    auto& object = before->load(counter_spec());
    before->attach_stage(kCountStage, object, "count_packets", EmptySlot::drop);
    before->attach_stage(kOtherStage, object, "count_packets");
    before->settle_empty_slots();
    before->close(/*keep_slots=*/true);  // SIGTERM
    before.reset();
    registry.reset();

    registry = make_core_registry();
    ASSERT_NE(slot(kCountStage), 0u) << "kept across the restart";
    ASSERT_NE(slot(kOtherStage), 0u);
    auto after = registry->for_module("guard", 1);
    after->attach_stage(kOtherStage, after->load(counter_spec()), "count_packets");
    const auto other_id = slot(kOtherStage);
    after->settle_empty_slots();
    EXPECT_EQ(slot(kCountStage), 0u) << "the earlier run's program still runs a stage its module left";
    EXPECT_EQ(slot(kOtherStage), other_id);
    EXPECT_THAT(registry->fail_closed_stages(), IsEmpty()) << "emptied into pass-through, not into a drop";
    EXPECT_THAT(module_slots(*registry), ElementsAre(SlotInfo{kOtherStage, "guard", 1, "count_packets", other_id}));
    EXPECT_THAT(log.text(), HasSubstr("guard gen 1 no longer fills it"));
}

// A generation that failed to start (never settled; an older one goes on)
// leaves its fail-closed declaration behind, like a failed first start.
TEST_F(SlotTest, AFailedGenerationLeavesItsFailClosedVerdict) {
    constexpr std::uint32_t kOtherStage = kCountStage + 1;
    auto gen1 = registry->for_module("guard", 1);
    gen1->attach_stage(kCountStage, gen1->load(counter_spec()), "count_packets");
    gen1->settle_empty_slots();
    auto gen2 = registry->for_module("guard", 2);
    gen2->attach_stage(kOtherStage, gen2->load(counter_spec()), "count_packets", EmptySlot::drop);
    gen1->reclaim_stages();
    gen2->close(false);  // gen2 failed to start; gen1 goes on
    EXPECT_EQ(slot(kOtherStage), 0u);
    EXPECT_THAT(registry->fail_closed_stages(), ElementsAre(kOtherStage));
}

TEST_F(SlotTest, CloseKeepingSlotsLeavesTheProgramRunning) {
    auto module = registry->for_module("counter", 1);
    auto& object = module->load(counter_spec());
    module->attach_stage(kCountStage, object, "count_packets");
    const auto id = program_id_of(object.program_fd("count_packets"));

    module->close(/*keep_slots=*/true);

    // The object's fds are closed; the prog array alone keeps the program.
    EXPECT_EQ(slot(kCountStage), id);
    EXPECT_THAT(module_slots(*registry), ElementsAre(SlotInfo{kCountStage, "counter", 1, "count_packets", id}));
}

TEST_F(SlotTest, AModuleFacadeDestroyedWithoutCloseEmptiesItsSlots) {
    {
        auto module = registry->for_module("counter", 1);
        module->attach_stage(kCountStage, module->load(counter_spec()), "count_packets");
        ASSERT_NE(slot(kCountStage), 0u);
    }
    EXPECT_EQ(slot(kCountStage), 0u);
}

TEST_F(SlotTest, AStageOutsideThePipelineIsRefused) {
    auto module = registry->for_module("counter", 1);
    auto& object = module->load(counter_spec());
    try {
        module->attach_stage(MBR_STAGE_MAX, object, "count_packets");
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("stage 16 does not exist"));
    }
}

TEST_F(SlotTest, ASlotHeldByAnotherModuleIsRefusedNamingTheHolder) {
    auto first = registry->for_module("first", 1);
    auto& first_object = first->load(counter_spec());
    first->attach_stage(kCountStage, first_object, "count_packets");
    const auto first_id = slot(kCountStage);

    auto second = registry->for_module("second", 1);
    auto& second_object = second->load(counter_spec());
    try {
        second->attach_stage(kCountStage, second_object, "count_packets");
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("held by module first (generation 1, program count_packets)"));
    }
    EXPECT_THROW(second->detach_stage(kCountStage), BpfError);
    second->close(false);
    EXPECT_EQ(slot(kCountStage), first_id);

    first->detach_stage(kCountStage);
    EXPECT_EQ(slot(kCountStage), 0u);
    EXPECT_THAT(first->held_stages(), IsEmpty());
}

TEST_F(SlotTest, AnObjectOfAnotherModuleOrAMissingProgramIsRefused) {
    auto first = registry->for_module("first", 1);
    auto& first_object = first->load(counter_spec());
    auto second = registry->for_module("second", 1);
    EXPECT_THROW(second->attach_stage(kCountStage, first_object, "count_packets"), BpfError);
    try {
        first->attach_stage(kCountStage, first_object, "no_such_program");
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("has no program no_such_program (it has: count_packets)"));
    }
}

TEST_F(SlotTest, AClosedFacadeRefusesWork) {
    auto module = registry->for_module("counter", 1);
    module->close(false);
    EXPECT_THROW(module->load(counter_spec()), BpfError);
}

TEST_F(SlotTest, OneGenerationGetsOneFacadeAtATime) {
    auto module = registry->for_module("counter", 1);
    EXPECT_THROW(registry->for_module("counter", 1), BpfError);
    module->close(false);
    EXPECT_NO_THROW(registry->for_module("counter", 1));
}

TEST(RegistryWithoutCore, AttachStageAsksForTheCoreFirst) {
    BpffsSandbox sandbox;
    CapturedLog log;
    Registry registry(sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger);
    auto module = registry.for_module("counter", 1);
    auto& object = module->load(counter_spec());
    try {
        module->attach_stage(kCountStage, object, "count_packets");
        FAIL() << "expected a BpfError";
    } catch (const BpfError& error) {
        EXPECT_THAT(error.what(), HasSubstr("open_core first"));
    }
}

}  // namespace
}  // namespace membrane::kernel::test
