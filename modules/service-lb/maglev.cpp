#include "maglev.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace membrane::service_lb::maglev {
namespace {

// Two independent 64-bit hashes of a name: FNV-1a from a seeded basis, then
// murmur3's finaliser, so that names a byte apart ("10.0.0.1:80",
// "10.0.0.2:80") get unrelated offsets and skips. Fixed here, for every
// node and every build: changing them moves every flow once.
constexpr std::uint64_t kOffsetSeed = 0x6d61676c65763031ULL;  // "maglev01"
constexpr std::uint64_t kSkipSeed = 0x736b697073656564ULL;    // "skipseed"

std::uint64_t hash(const std::string& name, std::uint64_t seed) {
    std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (const unsigned char c : name) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

bool is_prime(std::uint64_t n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (std::uint64_t d = 3; d * d <= n; d += 2) {
        if (n % d == 0) return false;
    }
    return true;
}

std::string table_size_problem(std::int64_t size) {
    if (size < kMinTableSize || size > kMaxTableSize) {
        return "must be a prime from " + std::to_string(kMinTableSize) + " to " + std::to_string(kMaxTableSize) +
               " (e.g. 16381), not " + std::to_string(size);
    }
    if (!is_prime(static_cast<std::uint64_t>(size))) {
        return "must be a prime (e.g. 1021, 4093, 16381, 65521), not " + std::to_string(size);
    }
    return "";
}

std::string backend_name(const std::string& address, std::uint16_t port) {
    return address + ":" + std::to_string(port);
}

std::vector<std::uint32_t> build_table(const std::vector<std::string>& names, std::uint32_t size) {
    if (!is_prime(size)) throw std::invalid_argument("a Maglev table size must be a prime: " + std::to_string(size));
    if (names.empty()) return {};
    // The turn order is the names' order, so that the input's does not matter.
    std::vector<std::uint32_t> order(names.size());
    std::iota(order.begin(), order.end(), 0U);
    std::ranges::sort(order, [&](std::uint32_t a, std::uint32_t b) { return names[a] < names[b]; });
    for (std::size_t i = 1; i < order.size(); ++i) {
        if (names[order[i]] == names[order[i - 1]]) throw std::invalid_argument("backend " + names[order[i]] + " twice");
    }
    // Backend i's permutation of the slots is offset_i + j * skip_i (mod M),
    // j = 0, 1, ...: a full cycle, M being prime and 0 < skip_i < M.
    struct Turn {
        std::uint64_t offset;
        std::uint64_t skip;
        std::uint64_t next = 0;  // j of the next slot to try
    };
    std::vector<Turn> turns;
    turns.reserve(order.size());
    for (const auto index : order) {
        turns.push_back({hash(names[index], kOffsetSeed) % size, hash(names[index], kSkipSeed) % (size - 1) + 1});
    }
    constexpr std::uint32_t kEmpty = UINT32_MAX;
    std::vector<std::uint32_t> table(size, kEmpty);
    // Round after round, each backend takes its next preferred slot still
    // free, until none is: shares differ by one slot at most.
    std::uint32_t filled = 0;
    while (true) {
        for (std::size_t i = 0; i < turns.size(); ++i) {
            Turn& turn = turns[i];
            std::uint64_t slot = (turn.offset + turn.next * turn.skip) % size;
            while (table[slot] != kEmpty) {
                ++turn.next;
                slot = (turn.offset + turn.next * turn.skip) % size;
            }
            table[slot] = order[i];
            ++turn.next;
            if (++filled == size) return table;
        }
    }
}

}  // namespace membrane::service_lb::maglev
