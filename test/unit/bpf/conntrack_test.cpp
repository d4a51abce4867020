// Connection tracking on a real kernel: the entry program classifies each
// packet against the pinned CT map (new, established, reply), a stage that
// tracks new connections makes the rest of the exchange established and
// replies, and the agent's sweep deletes only what has expired.
#include <bpf/bpf.h>

#include "bpf/conntrack_gc.hpp"
#include "pod_endpoints.hpp"
#include "pod_frames.hpp"
#include "pod_lab.hpp"
#include "registry_fixture.hpp"

MEMBRANE_EMBEDDED_BPF(conntrack_probe_bpf)

namespace membrane::kernel::test {
namespace {

class ConntrackTest : public RegistryTest {
protected:
    void SetUp() override {
        registry = make_core_registry();
        pod_a = lab.add_pod(1);
        pod_b = lab.add_pod(2);
        add_pod_endpoint(*registry, lab, pod_a, 101, MBR_IDENTITY_FIRST_ALLOCATED);
        add_pod_endpoint(*registry, lab, pod_b, 102, MBR_IDENTITY_FIRST_ALLOCATED + 1);
        EnterNetns inside(lab.node());
        registry->attach_device(pod_a.host_veth, MBR_ENTRY_FROM_ENDPOINT);
        registry->attach_device(pod_b.host_veth, MBR_ENTRY_FROM_ENDPOINT);
        probe = registry->for_module("probe", 1);
        auto& object = probe->load(BpfObjectSpec{.name = "probe", .elf = conntrack_probe_bpf(), .persistent_maps = {}});
        probe->attach_stage(MBR_STAGE_OBSERVE, object, "record_ct_states");
    }

    std::uint64_t seen(std::uint32_t state) const {
        const UniqueFd fd(bpf_obj_get(pin("mbr_test_ct_states_v1").c_str()));
        std::uint64_t count = 0;
        if (!fd || bpf_map_lookup_elem(fd.get(), &state, &count) != 0) ADD_FAILURE() << "no probe map";
        return count;
    }

    std::vector<mbr_ct_value> entries() const {
        const int fd = registry->core_map_fd(MBR_MAP_CT);
        std::vector<mbr_ct_value> out;
        mbr_ct_key key{}, next{};
        const void* previous = nullptr;
        while (bpf_map_get_next_key(fd, previous, &next) == 0) {
            mbr_ct_value value{};
            if (bpf_map_lookup_elem(fd, &next, &value) == 0) out.push_back(value);
            key = next;
            previous = &key;
        }
        return out;
    }

    PodLab lab;
    Pod pod_a, pod_b;
    std::unique_ptr<Registry> registry;
    std::unique_ptr<ModuleBpf> probe;
};

TEST_F(ConntrackTest, ARequestOpensAConnectionItsAnswersAndFollowersBelongTo) {
    std::string output;
    // One ping id: 3 requests, 3 replies.
    ASSERT_TRUE(PodLab::ping(pod_a, pod_b.ip, 3, &output)) << output;
    EXPECT_EQ(seen(MBR_CT_NEW), 1u);          // the first request
    EXPECT_EQ(seen(MBR_CT_ESTABLISHED), 2u);  // the other requests
    EXPECT_EQ(seen(MBR_CT_REPLY), 3u);        // every reply
    const auto tracked = entries();
    ASSERT_EQ(tracked.size(), 1u);
    EXPECT_TRUE(tracked[0].flags & MBR_CT_F_SEEN_REPLY);
    const std::uint64_t now = conntrack_now_ns();
    EXPECT_GT(tracked[0].expires_ns, now + (MBR_CT_TIMEOUT_OTHER_S - 5) * 1'000'000'000ull);
    EXPECT_LE(tracked[0].expires_ns, now + MBR_CT_TIMEOUT_OTHER_S * 1'000'000'000ull);
}

TEST_F(ConntrackTest, TheSweepDeletesOnlyExpiredEntries) {
    std::string output;
    ASSERT_TRUE(PodLab::ping(pod_a, pod_b.ip, 1, &output)) << output;
    ASSERT_EQ(entries().size(), 1u);
    // Now: the entry lives (as after an agent's restart), nothing goes.
    auto sweep = sweep_conntrack(registry->core_map_fd(MBR_MAP_CT), conntrack_now_ns());
    EXPECT_EQ(sweep.deleted, 0u);
    EXPECT_EQ(sweep.live, 1u);
    EXPECT_EQ(entries().size(), 1u);
    // Past its lifetime: it goes.
    sweep = sweep_conntrack(registry->core_map_fd(MBR_MAP_CT),
                            conntrack_now_ns() + (MBR_CT_TIMEOUT_OTHER_S + 1) * 1'000'000'000ull);
    EXPECT_EQ(sweep.deleted, 1u);
    EXPECT_EQ(sweep.live, 0u);
    EXPECT_TRUE(entries().empty());
}

// One echo request with ICMP id `id` from `from` to `to`, its reply awaited (1 s) if `await_reply`.
bool echo_with_id(const Pod& from, const std::string& to, int id, bool await_reply = true) {
    const std::string script = fmt::format(
        "import socket,struct,sys\n"
        "def csum(b):\n"
        "    s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return ~s&0xffff\n"
        "h=struct.pack('!BBHHH',8,0,0,{id},1)+b'membrane'\n"
        "h=h[:2]+struct.pack('!H',csum(h))+h[4:]\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.settimeout(1)\n"
        "s.sendto(h,('{to}',0))\n"
        "if not {wait}: sys.exit(0)\n"
        "while True:\n"
        "    d=s.recv(1500)\n"
        "    if d[20]==0 and struct.unpack('!H',d[24:26])[0]=={id}: sys.exit(0)\n",
        fmt::arg("id", id), fmt::arg("to", to), fmt::arg("wait", await_reply ? "True" : "False"));
    return PodLab::in_pod(from, "python3 -c \"" + script + "\"") == 0;
}

TEST_F(ConntrackTest, AnExpiredEntryIsNoConnection) {
    ASSERT_TRUE(echo_with_id(pod_a, pod_b.ip, 4242));
    ASSERT_EQ(seen(MBR_CT_NEW), 1u);
    ASSERT_TRUE(echo_with_id(pod_a, pod_b.ip, 4242));
    EXPECT_EQ(seen(MBR_CT_NEW), 1u);  // the same id: the same connection
    EXPECT_EQ(seen(MBR_CT_ESTABLISHED), 1u);
    // Age the entry past its end, as time would.
    const int fd = registry->core_map_fd(MBR_MAP_CT);
    mbr_ct_key key{};
    ASSERT_EQ(bpf_map_get_next_key(fd, nullptr, &key), 0);
    mbr_ct_value value{};
    ASSERT_EQ(bpf_map_lookup_elem(fd, &key, &value), 0);
    value.expires_ns = conntrack_now_ns() - 1;
    ASSERT_EQ(bpf_map_update_elem(fd, &key, &value, BPF_EXIST), 0);
    ASSERT_TRUE(echo_with_id(pod_a, pod_b.ip, 4242));
    EXPECT_EQ(seen(MBR_CT_NEW), 2u);
    EXPECT_EQ(seen(MBR_CT_ESTABLISHED), 1u);
}

// From `from` to `to`: ICMP port unreachable quoting an echo request from
// `quoted_src` to `quoted_dst` with ICMP id `id`.
bool unreachable(const Pod& from, const std::string& to, const std::string& quoted_src, const std::string& quoted_dst,
                 int id) {
    const std::string script = fmt::format(
        "import socket,struct\n"
        "def csum(b):\n"
        "    s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return ~s&0xffff\n"
        "ip=struct.pack('!BBHHHBBH4s4s',0x45,0,28,1,0,64,1,0,socket.inet_aton('{quoted_src}'),socket.inet_aton('{quoted_dst}'))\n"
        "ip=ip[:10]+struct.pack('!H',csum(ip))+ip[12:]\n"
        "h=struct.pack('!BBHI',3,3,0,0)+ip+struct.pack('!BBHHH',8,0,0,{id},1)\n"
        "h=h[:2]+struct.pack('!H',csum(h))+h[4:]\n"
        "socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP).sendto(h,('{to}',0))\n",
        fmt::arg("quoted_src", quoted_src), fmt::arg("quoted_dst", quoted_dst), fmt::arg("to", to), fmt::arg("id", id));
    return PodLab::in_pod(from, "python3 -c \"" + script + "\"") == 0;
}

TEST_F(ConntrackTest, AnIcmpErrorAboutATrackedConnectionIsRelated) {
    ASSERT_TRUE(echo_with_id(pod_a, pod_b.ip, 4242));
    const auto new_before = seen(MBR_CT_NEW);
    // pod_b says pod_a's request could not be taken: about the tracked connection.
    ASSERT_TRUE(unreachable(pod_b, pod_a.ip, pod_a.ip, pod_b.ip, 4242));
    eventually([&] { return seen(MBR_CT_RELATED) == 1; });
    EXPECT_EQ(seen(MBR_CT_RELATED), 1u);
    // The same about a connection nobody tracks: nothing related, as new as any first packet.
    ASSERT_TRUE(unreachable(pod_b, pod_a.ip, pod_a.ip, pod_b.ip, 999));
    eventually([&] { return seen(MBR_CT_NEW) == new_before + 1; });
    EXPECT_EQ(seen(MBR_CT_NEW), new_before + 1);
    EXPECT_EQ(seen(MBR_CT_RELATED), 1u);
}

// An error is about a packet its destination sent: one that wraps a tracked
// connection the other way round (or that a pod sends about a packet that
// was not for it) is no answer to anything, whatever it quotes.
TEST_F(ConntrackTest, AnIcmpErrorQuotingSomeoneElsesConnectionIsNotRelated) {
    ASSERT_TRUE(echo_with_id(pod_a, pod_b.ip, 4242));
    const auto new_before = seen(MBR_CT_NEW);
    // pod_a to pod_b, quoting pod_a's own request to pod_b: pod_b never sent it.
    ASSERT_TRUE(unreachable(pod_a, pod_b.ip, pod_a.ip, pod_b.ip, 4242));
    eventually([&] { return seen(MBR_CT_NEW) == new_before + 1; });
    // pod_b to pod_a about a (tracked) packet pod_a sent to a third address, pod_b being no router.
    ASSERT_TRUE(echo_with_id(pod_a, "10.99.0.9", 4343, false));
    eventually([&] { return seen(MBR_CT_NEW) == new_before + 2; });
    ASSERT_TRUE(unreachable(pod_b, pod_a.ip, pod_a.ip, "10.99.0.9", 4343));
    eventually([&] { return seen(MBR_CT_NEW) == new_before + 3; });
    EXPECT_EQ(seen(MBR_CT_NEW), new_before + 3);
    EXPECT_EQ(seen(MBR_CT_RELATED), 0u);
}

}  // namespace
}  // namespace membrane::kernel::test
