// The SDK's incremental IPv4 header rewrites (membrane/routing.h) against a
// checksum computed from scratch, over every checksum value a header can
// have: a header whose identification field takes all 65,536 values takes
// every checksum value too, so the end-around carry and the 0xffff/0x0000
// edge are each met. Run in the kernel (BPF_PROG_TEST_RUN), as the datapath
// runs them.
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include <cstdint>
#include <string>

#include "pod_frames.hpp"
#include "registry_fixture.hpp"

MEMBRANE_EMBEDDED_BPF(ipv4_rewrite_probe_bpf)

namespace membrane::kernel::test {
namespace {

constexpr std::size_t kIp = 14;  // the IPv4 header's offset in the frame
constexpr std::uint8_t kEcnCe = 0x03;

// An Ethernet frame carrying a 20-byte IPv4 header (UDP, no payload) with a correct checksum.
Frame ipv4_frame(std::uint16_t id, std::uint8_t ttl, std::uint8_t tos) {
    using namespace frame_detail;
    Frame frame = ethernet(Mac{2, 0, 0, 0, 0, 2}, Mac{2, 0, 0, 0, 0, 1}, kEtherIpv4);
    put16(frame, static_cast<std::uint16_t>(0x4500 | tos));
    put16(frame, 20);
    put16(frame, id);
    put16(frame, 0x4000);
    put16(frame, static_cast<std::uint16_t>(ttl << 8 | 17));
    put16(frame, 0);
    put_ipv4(frame, ipv4_be("10.1.2.3"));
    put_ipv4(frame, ipv4_be("10.4.5.6"));
    put_checksum(frame, kIp, 20, kIp + 10);
    return frame;
}

std::uint16_t checksum_of(const Frame& frame) {
    return static_cast<std::uint16_t>(frame[kIp + 10] << 8 | frame[kIp + 11]);
}

// What a rewrite must leave: `frame` with its checksum computed from scratch.
std::uint16_t recomputed(Frame frame) {
    frame[kIp + 10] = frame[kIp + 11] = 0;
    frame_detail::put_checksum(frame, kIp, 20, kIp + 10);
    return checksum_of(frame);
}

class Ipv4RewriteTest : public RegistryTest {
protected:
    void SetUp() override {
        registry = make_core_registry();
        probe = registry->for_module("probe", 1);
        object = &probe->load(BpfObjectSpec{.name = "probe", .elf = ipv4_rewrite_probe_bpf(), .persistent_maps = {}});
    }

    // The frame as the program left it.
    Frame run(const std::string& program, const Frame& in) const {
        Frame out(in.size() + 64);
        LIBBPF_OPTS(bpf_test_run_opts, options, .data_in = in.data(), .data_out = out.data(),
                    .data_size_in = static_cast<std::uint32_t>(in.size()),
                    .data_size_out = static_cast<std::uint32_t>(out.size()), .repeat = 1);
        if (bpf_prog_test_run_opts(object->program_fd(program), &options) != 0) {
            ADD_FAILURE() << program << ": test run refused";
            return in;
        }
        EXPECT_EQ(options.retval, static_cast<std::uint32_t>(TC_ACT_OK)) << program;
        out.resize(options.data_size_out);
        return out;
    }

    // Runs `program` over every identification field (so every checksum
    // value); returns how many frames came out wrong, reporting the first.
    template <typename Expect>
    int wrong_over_all_checksums(const std::string& program, std::uint8_t ttl, std::uint8_t tos, Expect expect) const {
        int wrong = 0;
        for (std::uint32_t id = 0; id <= 0xffff; ++id) {
            const Frame in = ipv4_frame(static_cast<std::uint16_t>(id), ttl, tos);
            Frame want = in;
            expect(want);
            const Frame got = run(program, in);
            if (got.size() != in.size() || got[kIp + 8] != want[kIp + 8] || got[kIp + 1] != want[kIp + 1] ||
                checksum_of(got) != recomputed(want)) {
                if (wrong++ == 0) {
                    ADD_FAILURE() << program << ": id " << id << " checksum in " << checksum_of(in) << " out "
                                  << checksum_of(got) << ", recomputed " << recomputed(want) << "; TTL "
                                  << int(got[kIp + 8]) << " (want " << int(want[kIp + 8]) << "), TOS "
                                  << int(got[kIp + 1]) << " (want " << int(want[kIp + 1]) << ")";
                }
            }
        }
        return wrong;
    }

    std::unique_ptr<Registry> registry;
    std::unique_ptr<ModuleBpf> probe;
    membrane::BpfObject* object = nullptr;
};

const auto one_ttl_less = [](Frame& frame) { frame[kIp + 8] -= 1; };

TEST_F(Ipv4RewriteTest, TheTtlDecrementInPlaceKeepsTheChecksumForEveryValue) {
    for (const std::uint8_t ttl : {2, 64, 255}) {
        EXPECT_EQ(wrong_over_all_checksums("decrement_ttl_in_place", ttl, 0, one_ttl_less), 0) << "TTL " << int(ttl);
    }
}

TEST_F(Ipv4RewriteTest, TheTtlDecrementThroughHelpersKeepsTheChecksumForEveryValue) {
    EXPECT_EQ(wrong_over_all_checksums("decrement_ttl_with_helpers", 64, 0, one_ttl_less), 0);
}

TEST_F(Ipv4RewriteTest, ACongestionMarkInTheLowHalfOfItsWordKeepsTheChecksumForEveryValue) {
    for (const std::uint8_t ect : {1, 2}) {
        const auto marked = [](Frame& frame) { frame[kIp + 1] |= kEcnCe; };
        EXPECT_EQ(wrong_over_all_checksums("mark_congestion_experienced", 64, ect, marked), 0) << "ECT " << int(ect);
    }
}

}  // namespace
}  // namespace membrane::kernel::test
