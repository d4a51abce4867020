#include "lb_maps.hpp"

#include "ipv4.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <unistd.h>

#include <algorithm>
#include <random>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <string>
#include <tuple>

#include <membrane/bpf.hpp>

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {
namespace {

service_lb_key map_key(const std::string& address, std::uint16_t port, Protocol protocol, Scope scope,
                       std::uint32_t slot) {
    service_lb_key key{};
    key.address = ipv4_address(address);
    key.port = htons(port);
    key.protocol = static_cast<std::uint8_t>(protocol);
    key.scope = static_cast<std::uint8_t>(scope);
    key.slot = slot;
    return key;
}

[[noreturn]] void fail(const std::string& what, int err) {
    throw BpfError(what + ": " + std::strerror(err));
}

void write_entry(int fd, const void* key, const void* value, const std::string& what) {
    if (bpf_map_update_elem(fd, key, value, BPF_ANY) != 0) fail("cannot write " + what, errno);
}

void erase(int fd, const void* key, const std::string& what) {
    if (bpf_map_delete_elem(fd, key) != 0 && errno != ENOENT) fail("cannot delete " + what, errno);
}

// The writer's mark: an entry at address 0.0.0.0, port 0 (no frontend's)
// whose service_id is the number of the LbMaps that last read the maps.
service_lb_key writer_key() { return service_lb_key{}; }

// What one service number stands for: a service port and its backend set.
// The ClusterIP's (internal traffic policy) and the external addresses' may
// differ, and affinity must not carry a client from one set into the other.
std::string backend_set_of(const Frontend& frontend) {
    return frontend.service + ":" + frontend.port_name + "/" + std::to_string(static_cast<int>(frontend.protocol)) +
           (frontend.scope == Scope::outside         ? "/outside"
            : frontend.kind == FrontendKind::cluster_ip ? "/internal"
                                                        : "/external");
}

bool is_writer_mark(const service_lb_key& key) { return key.address == 0 && key.port == 0; }

// An fd closed when it goes out of scope.
class OwnedFd {
public:
    explicit OwnedFd(int fd) : fd_(fd) {}
    ~OwnedFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// FNV-1a, 32 bits, over a sequence of values and strings.
class Stamp {
public:
    void add(std::uint32_t value) {
        for (int shift = 0; shift < 32; shift += 8) byte(static_cast<unsigned char>(value >> shift));
    }
    void add(const std::string& text) {
        for (const unsigned char c : text) byte(c);
        byte(0);
    }
    std::uint32_t value() const { return hash_; }

private:
    void byte(unsigned char c) {
        hash_ ^= c;
        hash_ *= 16777619U;
    }
    std::uint32_t hash_ = 2166136261U;
};

// Every entry of the services map but the mark, by frontend and slot.
using FrontendSlots =
    std::map<std::tuple<std::string, std::uint16_t, Protocol, Scope>, std::map<std::uint32_t, service_lb_value>>;

FrontendSlots read_services(int fd) {
    FrontendSlots out;
    service_lb_key key{};
    service_lb_key next{};
    const void* previous = nullptr;
    while (bpf_map_get_next_key(fd, previous, &next) == 0) {
        service_lb_value value{};
        if (!is_writer_mark(next) && bpf_map_lookup_elem(fd, &next, &value) == 0) {
            out[{ipv4_text(next.address), ntohs(next.port), static_cast<Protocol>(next.protocol),
                 static_cast<Scope>(next.scope)}][next.slot] = value;
        }
        key = next;
        previous = &key;
    }
    return out;
}

std::map<std::uint32_t, service_lb_backend> read_backends(int fd) {
    std::map<std::uint32_t, service_lb_backend> out;
    std::uint32_t key = 0;
    std::uint32_t next = 0;
    const void* previous = nullptr;
    while (bpf_map_get_next_key(fd, previous, &next) == 0) {
        service_lb_backend value{};
        if (bpf_map_lookup_elem(fd, &next, &value) == 0) out[next] = value;
        key = next;
        previous = &key;
    }
    return out;
}

}  // namespace

LbMaps::LbMaps(int services_fd, int backends_fd, Capacity capacity)
    : LbMaps(services_fd, backends_fd, capacity, Tables{}) {}

LbMaps::LbMaps(int services_fd, int backends_fd, Capacity capacity, Tables tables)
    : services_fd_(services_fd), backends_fd_(backends_fd), capacity_(capacity), tables_config_(tables) {
    if (const auto problem = maglev::table_size_problem(tables.size); !problem.empty()) {
        throw BpfError("Maglev table size " + problem);
    }
    std::random_device random;
    do {
        writer_ = random();
    } while (writer_ == 0);
    load();
}

bool LbMaps::still_the_writer() const {
    const auto key = writer_key();
    service_lb_value mark{};
    return bpf_map_lookup_elem(services_fd_, &key, &mark) == 0 && mark.service_id == writer_;
}

void LbMaps::load() {
    held_.clear();
    keys_of_service_.clear();
    outside_keys_.clear();
    id_users_.clear();
    backend_users_.clear();
    unnamed_.clear();
    slots_ = 0;
    owners_known_ = false;
    backend_values_.clear();
    backend_ids_.clear();
    next_backend_id_ = 1;
    next_service_id_ = 1;
    for (const auto& [id, value] : read_backends(backends_fd_)) {
        backend_values_[id] = {value.service_id, Backend{ipv4_text(value.address), ntohs(value.port), ""}};
        next_backend_id_ = std::max(next_backend_id_, id + 1);
    }
    for (const auto& [frontend, entries] : read_services(services_fd_)) {
        const auto master = entries.find(0);
        const std::uint32_t count = master == entries.end() ? 0 : master->second.count;
        // Slots past the count or without their service (a sync cut short): deleted now.
        for (const auto& [slot, value] : entries) {
            if (slot == 0 || (master != entries.end() && slot <= count)) continue;
            const auto stale =
                map_key(std::get<0>(frontend), std::get<1>(frontend), std::get<2>(frontend), std::get<3>(frontend), slot);
            erase(services_fd_, &stale, "a stale service slot");
        }
        if (master == entries.end()) continue;
        Held held{"", master->second.service_id, master->second.flags, master->second.affinity_timeout, {}};
        for (std::uint32_t slot = 1; slot <= count; ++slot) {
            const auto found = entries.find(slot);
            if (found == entries.end()) break;
            held.backend_ids.push_back(found->second.backend_id);
            const auto backend = backend_values_.find(found->second.backend_id);
            held.slots_carry_backends =
                held.slots_carry_backends && backend != backend_values_.end() &&
                found->second.backend_address == ipv4_address(backend->second.second.address) &&
                found->second.backend_port == htons(backend->second.second.port);
        }
        next_service_id_ = std::max(next_service_id_, held.service_id + 1);
        hold(frontend, std::move(held));
    }
    for (const auto& [backend_id, owner] : backend_values_) {
        backend_ids_[owner] = backend_id;
        if (!backend_users_.contains(backend_id)) unnamed_.insert(backend_id);
    }
    load_tables();
    // From now on this object knows what the maps hold; another writer (a
    // newer generation of the module that failed to start, after writing)
    // takes the mark, and the next sync reads the maps again.
    const auto mark_key = writer_key();
    service_lb_value mark{};
    mark.service_id = writer_;
    write_entry(services_fd_, &mark_key, &mark, "the service map's writer mark");
}

void LbMaps::hold(const FrontendKey& key, Held held) {
    keys_of_service_[held.service].insert(key);
    ++id_users_[held.service_id];
    if (std::get<3>(key) == Scope::outside) outside_keys_[held.service_id].insert(key);
    for (const auto id : held.backend_ids) {
        ++backend_users_[id];
        unnamed_.erase(id);
    }
    slots_ += 1 + held.backend_ids.size();
    held_.insert_or_assign(key, std::move(held));
}

void LbMaps::release(const FrontendKey& key) {
    const auto held = held_.find(key);
    if (held == held_.end()) return;
    const Held& h = held->second;
    if (const auto keys = keys_of_service_.find(h.service); keys != keys_of_service_.end()) {
        keys->second.erase(key);
        if (keys->second.empty()) keys_of_service_.erase(keys);
    }
    if (const auto users = id_users_.find(h.service_id); users != id_users_.end() && --users->second == 0) {
        id_users_.erase(users);
    }
    if (const auto keys = outside_keys_.find(h.service_id); keys != outside_keys_.end()) {
        keys->second.erase(key);
        if (keys->second.empty()) outside_keys_.erase(keys);
    }
    for (const auto id : h.backend_ids) {
        if (const auto users = backend_users_.find(id); users != backend_users_.end() && --users->second == 0) {
            backend_users_.erase(users);
            unnamed_.insert(id);
        }
    }
    slots_ -= 1 + h.backend_ids.size();
    held_.erase(held);
}

std::uint32_t LbMaps::service_id_for(const Frontend& frontend, ChosenIds& chosen) {
    const std::string backend_set = backend_set_of(frontend);
    if (const auto found = chosen.by_set.find(backend_set); found != chosen.by_set.end()) return found->second;
    // The number the maps hold for this frontend, unless this sync gave it
    // to another set already, or a frontend this sync leaves as it is has it.
    const auto held = held_.find({frontend.address, frontend.port, frontend.protocol, frontend.scope});
    const auto kept_elsewhere = [&](std::uint32_t id) {
        const auto users = id_users_.find(id);
        const auto released = chosen.released.find(id);
        return (users == id_users_.end() ? 0 : users->second) > (released == chosen.released.end() ? 0 : released->second);
    };
    const bool keep = held != held_.end() && !chosen.ids.contains(held->second.service_id) &&
                      !kept_elsewhere(held->second.service_id);
    const std::uint32_t id = keep ? held->second.service_id : next_service_id_++;
    chosen.by_set[backend_set] = id;
    chosen.ids.insert(id);
    return id;
}

std::uint32_t LbMaps::backend_id_for(std::uint32_t service_id, const Backend& backend) {
    const Backend key{backend.address, backend.port, ""};
    if (const auto found = backend_ids_.find({service_id, key}); found != backend_ids_.end()) return found->second;
    const std::uint32_t id = next_backend_id_++;
    service_lb_backend value{};
    value.address = ipv4_address(backend.address);
    value.port = htons(backend.port);
    value.service_id = service_id;
    write_entry(backends_fd_, &id, &value, "backend " + backend.address + ":" + std::to_string(backend.port));
    backend_values_[id] = {service_id, key};
    backend_ids_[{service_id, key}] = id;
    unnamed_.insert(id);  // until a slot names it
    return id;
}

void LbMaps::write_frontend(const FrontendKey& key, const Held& wanted) {
    const auto& [address, port, protocol, scope] = key;
    const auto what = "service " + address + ":" + std::to_string(port);
    const auto old = held_.find(key);
    const std::size_t old_count = old == held_.end() ? 0 : old->second.backend_ids.size();
    // Slots 1..n first: a reader that still sees the old count picks an old
    // or a new backend, never an empty slot.
    const bool old_slots_current = old != held_.end() && old->second.slots_carry_backends;
    for (std::size_t i = 0; i < wanted.backend_ids.size(); ++i) {
        if (old_slots_current && i < old_count && old->second.backend_ids[i] == wanted.backend_ids[i]) continue;
        const auto slot_key = map_key(address, port, protocol, scope, static_cast<std::uint32_t>(i + 1));
        const auto& backend = backend_values_.at(wanted.backend_ids[i]).second;
        service_lb_value slot{};
        slot.backend_id = wanted.backend_ids[i];
        slot.backend_address = ipv4_address(backend.address);
        slot.backend_port = htons(backend.port);
        write_entry(services_fd_, &slot_key, &slot, what + " slot");
    }
    const auto master_key = map_key(address, port, protocol, scope, 0);
    service_lb_value master{};
    master.count = static_cast<std::uint16_t>(wanted.backend_ids.size());
    master.flags = wanted.flags;
    master.service_id = wanted.service_id;
    master.affinity_timeout = wanted.affinity_timeout;
    write_entry(services_fd_, &master_key, &master, what);
    release(key);
    hold(key, wanted);
    // Then the slots past the new count.
    for (std::size_t slot = wanted.backend_ids.size() + 1; slot <= old_count; ++slot) {
        const auto slot_key = map_key(address, port, protocol, scope, static_cast<std::uint32_t>(slot));
        erase(services_fd_, &slot_key, what + " slot");
    }
}

void LbMaps::delete_frontend(const FrontendKey& key) {
    const auto& [address, port, protocol, scope] = key;
    const auto what = "service " + address + ":" + std::to_string(port);
    const auto master_key = map_key(address, port, protocol, scope, 0);
    erase(services_fd_, &master_key, what);
    const std::size_t count = held_.at(key).backend_ids.size();
    release(key);
    for (std::size_t slot = 1; slot <= count; ++slot) {
        const auto slot_key = map_key(address, port, protocol, scope, static_cast<std::uint32_t>(slot));
        erase(services_fd_, &slot_key, what + " slot");
    }
}

LbMaps::Written LbMaps::sync(const std::vector<Frontend>& frontends) {
    if (!still_the_writer()) load();
    std::set<FrontendKey> every;
    for (const auto& [key, held] : held_) every.insert(key);
    std::set<std::uint32_t> tables;  // and every table, those of no outside frontend too
    for (const auto& [id, stamp] : tables_) tables.insert(id);
    owners_known_ = false;  // until this sync is done
    const auto written = replace(frontends, every, std::move(tables));
    owners_known_ = true;
    return written;
}

std::optional<LbMaps::Written> LbMaps::update(const std::set<std::string>& services,
                                              const std::vector<Frontend>& frontends) {
    if (!still_the_writer()) {
        load();
        return std::nullopt;
    }
    if (!owners_known_) return std::nullopt;
    std::set<FrontendKey> theirs;
    for (const auto& service : services) {
        if (const auto keys = keys_of_service_.find(service); keys != keys_of_service_.end()) {
            theirs.insert(keys->second.begin(), keys->second.end());
        }
    }
    owners_known_ = false;  // a failed update leaves those services half written: sync() then
    const auto written = replace(frontends, theirs, {});
    owners_known_ = true;
    return written;
}

LbMaps::Written LbMaps::replace(const std::vector<Frontend>& frontends, const std::set<FrontendKey>& replaced,
                                std::set<std::uint32_t> tables) {
    // Fits, or nothing is written: the entries the maps will hold once the
    // replaced frontends make way for these (one entry is the writer's mark).
    ChosenIds chosen;
    std::set<FrontendKey> wanted_keys;
    for (const auto& frontend : frontends) wanted_keys.insert({frontend.address, frontend.port, frontend.protocol, frontend.scope});
    std::size_t slots = slots_ + 1;
    std::map<std::uint32_t, std::ptrdiff_t> users_change;  // backend id -> slots naming it, after minus before
    std::map<std::uint32_t, std::ptrdiff_t> outside_change;  // service number -> outside frontends, after minus before
    const auto make_way = [&](const FrontendKey& key) {
        const auto held = held_.find(key);
        if (held == held_.end()) return;
        ++chosen.released[held->second.service_id];
        if (std::get<3>(key) == Scope::outside) {
            --outside_change[held->second.service_id];
            tables.insert(held->second.service_id);
        }
        slots -= 1 + held->second.backend_ids.size();
        for (const auto id : held->second.backend_ids) --users_change[id];
    };
    for (const auto& key : replaced) make_way(key);
    for (const auto& key : wanted_keys) {
        if (!replaced.contains(key)) make_way(key);  // another service's until now
    }
    std::vector<std::uint32_t> ids;
    std::set<std::pair<std::uint32_t, Backend>> fresh;  // backend entries to add
    for (const auto& frontend : frontends) {
        if (frontend.backends.size() > 0xffff) {
            throw BpfError("service " + frontend.service + " has " + std::to_string(frontend.backends.size()) +
                           " backends on one port; at most 65535 fit");
        }
        ids.push_back(service_id_for(frontend, chosen));
        slots += 1 + frontend.backends.size();
        if (frontend.scope == Scope::outside) ++outside_change[ids.back()];
        for (const auto& backend : frontend.backends) {
            const std::pair<std::uint32_t, Backend> entry{ids.back(), Backend{backend.address, backend.port, ""}};
            if (const auto found = backend_ids_.find(entry); found != backend_ids_.end()) {
                ++users_change[found->second];
            } else {
                fresh.insert(entry);
            }
        }
    }
    // The frontends that go (replaced, their key taken by none of these)
    // are deleted first, with the backends only they named, so that what
    // is written next has their room: the maps never hold more than the
    // end state, but for the backends the rewritten frontends stop naming,
    // which their old slots name until they are rewritten.
    std::set<FrontendKey> going;
    std::map<std::uint32_t, std::ptrdiff_t> going_users;  // backend id -> slots of the going frontends naming it
    for (const auto& key : replaced) {
        const auto held = held_.find(key);
        if (held == held_.end() || wanted_keys.contains(key)) continue;
        going.insert(key);
        for (const auto id : held->second.backend_ids) ++going_users[id];
    }
    std::set<std::uint32_t> going_first;  // backend entries deleted with the going frontends
    std::size_t unnamed_after = 0;        // entries no slot will name, those included
    for (const auto& [id, change] : users_change) {
        const auto users = backend_users_.find(id);
        const std::ptrdiff_t before = users == backend_users_.end() ? 0 : static_cast<std::ptrdiff_t>(users->second);
        if (before > 0 && before + change == 0 && backend_values_.contains(id)) {
            ++unnamed_after;
            if (going_users[id] == before) going_first.insert(id);
        }
    }
    for (const auto id : unnamed_) {
        const auto change = users_change.find(id);
        if ((change == users_change.end() || change->second == 0) && backend_values_.contains(id)) {
            ++unnamed_after;
            going_first.insert(id);
        }
    }
    const std::size_t backends_after = backend_values_.size() - unnamed_after + fresh.size();
    const std::size_t backends_peak = backend_values_.size() - going_first.size() + fresh.size();
    if (slots > capacity_.slots) {
        throw BpfError("the services need " + std::to_string(slots - 1) + " entries (one per frontend and backend), "
                       "the service map has " + std::to_string(capacity_.slots) + ": nothing was changed");
    }
    if (backends_peak > capacity_.backends) {
        throw BpfError("the services need " + std::to_string(backends_after) + " backend entries" +
                       (backends_peak > backends_after
                            ? " (" + std::to_string(backends_peak) + " while the replaced backends still serve)"
                            : "") +
                       ", the backend map has " + std::to_string(capacity_.backends) + ": nothing was changed");
    }
    std::set<std::uint32_t> tables_first;  // Maglev tables deleted with the going frontends
    if (tables_config_.fd >= 0) {
        std::size_t sets = outside_keys_.size();  // outside backend sets, each a table (or none, if empty)
        for (const auto& [id, change] : outside_change) {
            const auto keys = outside_keys_.find(id);
            const auto before = static_cast<std::ptrdiff_t>(keys == outside_keys_.end() ? 0 : keys->second.size());
            if (before == 0 && change > 0) ++sets;
            if (before > 0 && before + change == 0) --sets;
        }
        // The tables of numbers no frontend keeps go with the going frontends;
        // the new numbers' tables are made while the others still stand.
        std::set<std::uint32_t> outside_ids;  // this change's outside frontends' numbers
        std::size_t made = 0;
        for (std::size_t i = 0; i < frontends.size(); ++i) {
            if (frontends[i].scope != Scope::outside || !outside_ids.insert(ids[i]).second) continue;
            if (!frontends[i].backends.empty() && !tables_.contains(ids[i])) ++made;
        }
        for (const auto& [id, stamp] : tables_) {
            if (outside_ids.contains(id)) continue;
            const auto keys = outside_keys_.find(id);
            if (keys == outside_keys_.end() ||
                std::ranges::all_of(keys->second, [&](const FrontendKey& key) { return going.contains(key); })) {
                tables_first.insert(id);
            }
        }
        const std::size_t peak = tables_.size() - tables_first.size() + made;
        if (std::max(sets, peak) > tables_config_.capacity) {
            throw BpfError("the services need " + std::to_string(sets) + " Maglev tables (one per service port "
                           "served from outside" +
                           (peak > sets ? "; " + std::to_string(peak) + " while the replaced ones still serve" : "") +
                           "), the table map has " + std::to_string(tables_config_.capacity) +
                           ": nothing was changed");
        }
    }

    Written written;
    for (const auto& key : going) {
        delete_frontend(key);
        ++written.frontends_deleted;
    }
    for (const auto id : going_first) delete_backend(id, written);
    for (const auto id : tables_first) {
        delete_table(id);
        ++written.tables_deleted;
    }
    // The backends first (new ids), then the Maglev tables of the outside
    // sets, then the frontends: a frontend's number has its table before a
    // reader meets it there.
    std::vector<Held> wanted_list;
    wanted_list.reserve(frontends.size());
    for (std::size_t i = 0; i < frontends.size(); ++i) {
        const Frontend& frontend = frontends[i];
        Held wanted;
        wanted.service = frontend.service;
        wanted.service_id = ids[i];
        wanted.flags = (frontend.drop_when_empty ? SERVICE_LB_F_DROP_WHEN_EMPTY : 0) |
                       (frontend.source_ranges.empty() ? 0 : SERVICE_LB_F_SOURCE_RANGES) |
                       (frontend.address.starts_with("127.") ? SERVICE_LB_F_HOST_NETNS : 0);
        wanted.affinity_timeout = frontend.affinity_timeout;
        for (const auto& backend : frontend.backends) {
            wanted.backend_ids.push_back(backend_id_for(wanted.service_id, backend));
        }
        wanted_list.push_back(std::move(wanted));
    }
    if (tables_config_.fd >= 0) {
        std::set<std::uint32_t> made;
        for (std::size_t i = 0; i < frontends.size(); ++i) {
            if (frontends[i].scope != Scope::outside || !made.insert(ids[i]).second) continue;
            if (ensure_table(ids[i], wanted_list[i].backend_ids)) ++written.tables_written;
        }
    }
    // Those that shrink before those that grow, so the services map never
    // holds more than it will at the end (a frontend rewritten holds, for a
    // moment, the larger of its old and new entries).
    std::vector<std::size_t> order(frontends.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    const auto growth = [&](std::size_t i) {
        const auto held = held_.find({frontends[i].address, frontends[i].port, frontends[i].protocol, frontends[i].scope});
        const auto before = static_cast<std::ptrdiff_t>(held == held_.end() ? 0 : 1 + held->second.backend_ids.size());
        return static_cast<std::ptrdiff_t>(1 + wanted_list[i].backend_ids.size()) - before;
    };
    std::ranges::stable_partition(order, [&](std::size_t i) { return growth(i) <= 0; });
    for (const auto i : order) {
        const Frontend& frontend = frontends[i];
        const FrontendKey key{frontend.address, frontend.port, frontend.protocol, frontend.scope};
        Held wanted = std::move(wanted_list[i]);
        const auto held = held_.find(key);
        if (held != held_.end() && held->second.same_entries(wanted)) {
            if (held->second.service != wanted.service) {  // whose it is, now known: nothing to write
                release(key);
                hold(key, std::move(wanted));
            }
            continue;
        }
        write_frontend(key, wanted);
        ++written.frontends_changed;
    }
    // Tables of a number no outside frontend has (or only empty ones) go
    // after the frontends that named it.
    for (const auto id : tables) {
        const auto keys = outside_keys_.find(id);
        const bool empty = keys == outside_keys_.end() || held_.at(*keys->second.begin()).backend_ids.empty();
        if (empty && tables_.contains(id)) {
            delete_table(id);
            ++written.tables_deleted;
        }
    }
    // The backends the rewritten frontends named, and no slot names any more, go last.
    for (const auto id : std::vector<std::uint32_t>(unnamed_.begin(), unnamed_.end())) delete_backend(id, written);
    return written;
}

void LbMaps::delete_backend(std::uint32_t id, Written& written) {
    const auto value = backend_values_.find(id);
    if (value != backend_values_.end()) {
        erase(backends_fd_, &id, "backend " + value->second.second.address);
        backend_ids_.erase(value->second);
        backend_values_.erase(value);
        ++written.backends_deleted;
    }
    unnamed_.erase(id);
}

void LbMaps::load_tables() {
    tables_.clear();
    if (tables_config_.fd < 0) return;
    std::uint32_t key = 0;
    std::uint32_t next = 0;
    const void* previous = nullptr;
    while (bpf_map_get_next_key(tables_config_.fd, previous, &next) == 0) {
        std::optional<std::uint32_t> stamp;
        std::uint32_t inner_id = 0;  // a hash of maps gives user space the inner map's id
        if (bpf_map_lookup_elem(tables_config_.fd, &next, &inner_id) == 0) {
            const OwnedFd inner(bpf_map_get_fd_by_id(inner_id));
            const std::uint32_t index = 0;
            service_lb_maglev_pair header{};  // (M, stamp)
            if (inner.get() >= 0 && bpf_map_lookup_elem(inner.get(), &index, &header) == 0) stamp = header.slot[1];
        }
        tables_[next] = stamp;
        key = next;
        previous = &key;
    }
}

std::uint32_t LbMaps::table_stamp(const std::vector<std::uint32_t>& backend_ids) const {
    Stamp stamp;
    stamp.add(tables_config_.size);
    for (const auto id : backend_ids) {
        const auto& backend = backend_values_.at(id).second;
        stamp.add(id);
        stamp.add(maglev::backend_name(backend.address, backend.port));
    }
    return stamp.value();
}

bool LbMaps::ensure_table(std::uint32_t service_id, std::vector<std::uint32_t> backend_ids) {
    // One entry per backend id (two Backends that differ by node only share one).
    std::ranges::sort(backend_ids);
    backend_ids.erase(std::unique(backend_ids.begin(), backend_ids.end()), backend_ids.end());
    if (backend_ids.empty()) return false;  // none to pick: deleted once no frontend names it
    const auto stamp = table_stamp(backend_ids);
    if (const auto held = tables_.find(service_id); held != tables_.end() && held->second == stamp) return false;
    write_table(service_id, backend_ids, stamp);
    tables_[service_id] = stamp;
    return true;
}

void LbMaps::write_table(std::uint32_t service_id, const std::vector<std::uint32_t>& backend_ids,
                         std::uint32_t stamp) {
    const std::uint32_t size = tables_config_.size;
    std::vector<std::string> names;
    names.reserve(backend_ids.size());
    for (const auto id : backend_ids) {
        const auto& backend = backend_values_.at(id).second;
        names.push_back(maglev::backend_name(backend.address, backend.port));
    }
    const auto slots = maglev::build_table(names, size);
    // Pairs of __u32 (bpf/lb_maps.h), written as one run: M, the stamp, the slots (and a 0 to pad).
    const std::uint32_t pairs = SERVICE_LB_MAGLEV_PAIRS(size);
    std::vector<std::uint32_t> values(2 * static_cast<std::size_t>(pairs));
    values[SERVICE_LB_MAGLEV_SIZE] = size;
    values[SERVICE_LB_MAGLEV_STAMP] = stamp;
    for (std::uint32_t slot = 0; slot < size; ++slot) values[SERVICE_LB_MAGLEV_FIRST + slot] = backend_ids[slots[slot]];
    std::vector<std::uint32_t> keys(pairs);
    std::iota(keys.begin(), keys.end(), 0U);
    const auto what = "the Maglev table of service number " + std::to_string(service_id);
    // A new array, filled, then swapped in by one update of the outer map:
    // a reader meets the old table or the new one, whole.
    LIBBPF_OPTS(bpf_map_create_opts, options, .map_flags = BPF_F_INNER_MAP);
    const OwnedFd table(bpf_map_create(BPF_MAP_TYPE_ARRAY, "lb_maglev", sizeof(std::uint32_t),
                                       sizeof(service_lb_maglev_pair), pairs, &options));
    if (table.get() < 0) fail("cannot create " + what, errno);
    std::uint32_t count = pairs;
    if (bpf_map_update_batch(table.get(), keys.data(), values.data(), &count, nullptr) != 0) fail("cannot fill " + what, errno);
    const int fd = table.get();
    write_entry(tables_config_.fd, &service_id, &fd, what);
}

void LbMaps::delete_table(std::uint32_t service_id) {
    erase(tables_config_.fd, &service_id, "the Maglev table of service number " + std::to_string(service_id));
    tables_.erase(service_id);
}

std::vector<MapFrontend> LbMaps::frontends() const {
    std::vector<MapFrontend> list;
    for (const auto& [key, held] : held_) {
        MapFrontend frontend{std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), held.service_id, held.flags,
                             held.affinity_timeout, {}};
        for (const auto id : held.backend_ids) {
            if (const auto found = backend_values_.find(id); found != backend_values_.end()) {
                frontend.backends.push_back(found->second.second);
            }
        }
        list.push_back(std::move(frontend));
    }
    return list;
}

std::vector<MapFrontend> LbMaps::read_frontends() const {
    const auto backends = read_backends(backends_fd_);
    const auto entries = read_services(services_fd_);
    std::vector<MapFrontend> list;
    for (const auto& [frontend, slots] : entries) {
        const auto master = slots.find(0);
        if (master == slots.end()) continue;
        MapFrontend out{std::get<0>(frontend), std::get<1>(frontend), std::get<2>(frontend), std::get<3>(frontend),
                        master->second.service_id,
                        master->second.flags, master->second.affinity_timeout, {}};
        for (std::uint32_t slot = 1; slot <= master->second.count; ++slot) {
            const auto found = slots.find(slot);
            const auto backend = found == slots.end() ? backends.end() : backends.find(found->second.backend_id);
            if (backend == backends.end()) {
                out.backends.push_back(Backend{"missing", 0, ""});  // what a reader would meet: never, in write order
                continue;
            }
            out.backends.push_back(Backend{ipv4_text(backend->second.address), ntohs(backend->second.port), ""});
        }
        list.push_back(std::move(out));
    }
    return list;
}

}  // namespace membrane::service_lb
