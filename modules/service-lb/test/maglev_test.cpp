// Maglev tables (maglev.hpp): the same names give the same table in any
// order (so every node builds the same one), each backend holds M/N slots
// give or take one, a removal moves little more than the removed backend's
// slots, and only a prime in range is a table size.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "maglev.hpp"

namespace membrane::service_lb::maglev {
namespace {

std::vector<std::string> names(int count, int first = 1) {
    std::vector<std::string> out;
    for (int i = first; i < first + count; ++i) {
        out.push_back(backend_name("10.10." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), 8080));
    }
    return out;
}

// Slot -> the name it holds.
std::vector<std::string> named_table(const std::vector<std::string>& backends, std::uint32_t size) {
    const auto table = build_table(backends, size);
    std::vector<std::string> out;
    out.reserve(table.size());
    for (const auto index : table) out.push_back(backends.at(index));
    return out;
}

TEST(Maglev, SameNamesInAnyOrderGiveTheSameTable) {
    auto backends = names(20);
    const auto table = named_table(backends, kDefaultTableSize);
    ASSERT_EQ(table.size(), kDefaultTableSize);
    std::mt19937 random(7);
    for (int round = 0; round < 5; ++round) {
        std::ranges::shuffle(backends, random);
        EXPECT_EQ(named_table(backends, kDefaultTableSize), table) << "shuffle " << round;
    }
    // Fixed slots, so that a change of the hashes or of the fill (which
    // would split a cluster whose nodes run different versions) is seen.
    const auto small = build_table({"10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80"}, 251);
    const std::vector<std::uint32_t> first(small.begin(), small.begin() + 16);
    EXPECT_EQ(first, (std::vector<std::uint32_t>{0, 2, 2, 2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 2, 2, 0}));
}

TEST(Maglev, EachBackendHoldsItsShareGiveOrTakeOne) {
    for (const std::uint32_t size : {251U, 1021U, kDefaultTableSize}) {
        for (const int count : {1, 2, 3, 7, 10, 100}) {
            std::map<std::uint32_t, std::uint32_t> held;
            for (const auto index : build_table(names(count), size)) ++held[index];
            ASSERT_EQ(held.size(), static_cast<std::size_t>(count)) << "M=" << size << " N=" << count;
            for (const auto& [index, slots] : held) {
                EXPECT_GE(slots, size / count) << "M=" << size << " N=" << count << " backend " << index;
                EXPECT_LE(slots, size / count + 1) << "M=" << size << " N=" << count << " backend " << index;
            }
        }
    }
}

TEST(Maglev, RemovingOneOfNMovesAboutOneNth) {
    for (const int count : {3, 10, 50}) {
        const auto before_names = names(count);
        const auto before = named_table(before_names, kDefaultTableSize);
        for (const int removed : {0, count / 2, count - 1}) {
            auto after_names = before_names;
            after_names.erase(after_names.begin() + removed);
            const auto after = named_table(after_names, kDefaultTableSize);
            std::uint32_t moved = 0;      // slots of a remaining backend that changed hands
            std::uint32_t orphaned = 0;   // the removed backend's slots
            for (std::uint32_t slot = 0; slot < kDefaultTableSize; ++slot) {
                if (before[slot] == before_names[removed]) {
                    ++orphaned;
                } else if (before[slot] != after[slot]) {
                    ++moved;
                }
            }
            // The removed backend's share must move; of the rest, Maglev moves
            // about 1% here (the paper's Figure 11), a rehash (N -> N-1) most.
            EXPECT_GE(orphaned, kDefaultTableSize / count);
            EXPECT_LE(orphaned, kDefaultTableSize / count + 1);
            EXPECT_LE(moved, kDefaultTableSize / 40) << "N=" << count << ", removed " << removed << ": " << moved
                                                     << " slots of the remaining backends moved";
        }
    }
}

TEST(Maglev, AddingOneMovesAboutOneNthToIt) {
    const auto before_names = names(10);
    const auto after_names = names(11);
    const auto before = named_table(before_names, kDefaultTableSize);
    const auto after = named_table(after_names, kDefaultTableSize);
    std::uint32_t changed = 0;
    for (std::uint32_t slot = 0; slot < kDefaultTableSize; ++slot) changed += before[slot] != after[slot];
    EXPECT_LE(changed, kDefaultTableSize / 11 + kDefaultTableSize / 20);
}

TEST(Maglev, TableSizeIsAPrimeInRange) {
    EXPECT_EQ(table_size_problem(kDefaultTableSize), "");
    for (const std::int64_t size : {251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 257, 10007}) {
        EXPECT_EQ(table_size_problem(size), "") << size;
    }
    EXPECT_EQ(table_size_problem(16384), "must be a prime (e.g. 1021, 4093, 16381, 65521), not 16384");
    EXPECT_EQ(table_size_problem(16383), "must be a prime (e.g. 1021, 4093, 16381, 65521), not 16383");
    EXPECT_EQ(table_size_problem(241), "must be a prime from 251 to 131071 (e.g. 16381), not 241");
    EXPECT_EQ(table_size_problem(131101), "must be a prime from 251 to 131071 (e.g. 16381), not 131101");
    EXPECT_NE(table_size_problem(0), "");
    EXPECT_NE(table_size_problem(-16381), "");
    EXPECT_FALSE(is_prime(1));
    EXPECT_TRUE(is_prime(2));
    EXPECT_FALSE(is_prime(65535));
    EXPECT_TRUE(is_prime(65537));
    EXPECT_THROW(build_table(names(2), 1000), std::invalid_argument);
    EXPECT_THROW(build_table({"10.0.0.1:80", "10.0.0.1:80"}, 251), std::invalid_argument);
    EXPECT_TRUE(build_table({}, 251).empty());
}

}  // namespace
}  // namespace membrane::service_lb::maglev
