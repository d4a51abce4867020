// service-lb's pinned maps (bpf/lb_maps.h) as the C++ half writes them. It
// remembers what the maps hold (read back at start, so a reload or restart
// diffs against the truth and keeps every service's number and backend
// ids) and writes only the difference, in the order the BPF readers need:
// a backend before a slot names it, the slots before the count grows, the
// count before the slots shrink, a frontend's slot 0 before its slots go.
// It also keeps a Maglev table (maglev.hpp) per outside backend set, made
// whole before it is swapped in, again only when its backends change.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "maglev.hpp"
#include "service_table.hpp"

namespace membrane::service_lb {

// One frontend as the maps hold it.
struct MapFrontend {
    std::string address;
    std::uint16_t port = 0;
    Protocol protocol = Protocol::tcp;
    Scope scope = Scope::socket;
    std::uint32_t service_id = 0;
    std::uint16_t flags = 0;
    std::uint32_t affinity_timeout = 0;
    std::vector<Backend> backends;  // in slot order (slot 1 first)
    bool operator==(const MapFrontend&) const = default;
};

class LbMaps {
public:
    struct Capacity {
        std::size_t slots;     // entries of the services map (a frontend takes 1 + its backends)
        std::size_t backends;  // entries of the backends map
    };
    // The Maglev tables of the outside frontends' backend sets.
    struct Tables {
        int fd = -1;  // service_lb_maglev_v1 (hash of maps); -1: no tables are kept
        std::uint32_t size = maglev::kDefaultTableSize;  // M, a prime (maglev::table_size_problem)
        std::size_t capacity = 0;  // entries of that map
    };
    // Reads what the maps hold, and marks them as this object's: a sync
    // after another LbMaps marked them (a newer module generation that
    // wrote, then failed to start) reads them again before it writes.
    LbMaps(int services_fd, int backends_fd, Capacity capacity, Tables tables);
    LbMaps(int services_fd, int backends_fd, Capacity capacity);  // no tables

    struct Written {
        std::size_t frontends_changed = 0;
        std::size_t frontends_deleted = 0;
        std::size_t backends_deleted = 0;  // ids no slot names any more
        std::size_t tables_written = 0;    // Maglev tables made (new or rebuilt)
        std::size_t tables_deleted = 0;
    };
    // Makes the maps hold exactly `frontends`. Refused as a whole (membrane::
    // BpfError naming what does not fit, nothing written) when they need
    // more entries than the maps have; a failed write throws too, and what
    // was written stays known, so the next sync finishes the job.
    Written sync(const std::vector<Frontend>& frontends);
    // The same for some services only: the maps hold `frontends` for the
    // services named in `services` (a service named but without frontends
    // loses its own), every other service's as they are, at the cost of
    // those services' frontends, not of all. `frontends` are of those
    // services only, and an address one of them takes is not held by a
    // service left out (ServiceFrontends hands over every claimant).
    // Refused and failing as sync() does. nullopt, with nothing written,
    // when it cannot know whose the held frontends are: before the first
    // sync(), after a sync() or update() that threw, or when another LbMaps
    // wrote the maps since (this one has read them again): sync() everything then.
    std::optional<Written> update(const std::set<std::string>& services, const std::vector<Frontend>& frontends);

    // What this object wrote (and read back at start), sorted by (address,
    // port, protocol, scope).
    std::vector<MapFrontend> frontends() const;
    // What the maps hold now, read from them (`membranectl lb list`): the
    // same as frontends() unless someone else wrote them. A slot whose
    // backend is absent shows as address "missing".
    std::vector<MapFrontend> read_frontends() const;
    std::size_t frontend_count() const { return held_.size(); }
    std::size_t slot_count() const { return slots_; }
    std::size_t backend_count() const { return backend_values_.size(); }
    std::size_t table_count() const { return tables_.size(); }
    std::uint32_t table_size() const { return tables_config_.size; }

private:
    using FrontendKey = std::tuple<std::string, std::uint16_t, Protocol, Scope>;
    struct Held {
        std::string service;  // "" when read back from the maps, until a sync says whose it is
        std::uint32_t service_id = 0;
        std::uint16_t flags = 0;
        std::uint32_t affinity_timeout = 0;
        std::vector<std::uint32_t> backend_ids;  // slot order
        // False for slots read back without their backend's address and port
        // (written by an older module): rewritten at the next sync.
        bool slots_carry_backends = true;
        bool same_entries(const Held& other) const {
            return service_id == other.service_id && flags == other.flags &&
                   affinity_timeout == other.affinity_timeout && backend_ids == other.backend_ids &&
                   slots_carry_backends == other.slots_carry_backends;
        }
    };
    void load();
    bool still_the_writer() const;
    // Makes `frontends` held, and deletes the frontends of `replaced` that
    // are not among them (sync: every held one; update: the services').
    // `tables` are service numbers whose Maglev table is to be checked too
    // (sync: every one the map holds).
    Written replace(const std::vector<Frontend>& frontends, const std::set<FrontendKey>& replaced,
                    std::set<std::uint32_t> tables);
    // The service numbers one sync has given: by backend set, and the set of them.
    struct ChosenIds {
        std::map<std::string, std::uint32_t> by_set;
        std::set<std::uint32_t> ids;
        // How many frontends of each number the sync replaces: a number held
        // by more frontends than that is another service's.
        std::map<std::uint32_t, std::size_t> released;
    };
    std::uint32_t service_id_for(const Frontend& frontend, ChosenIds& chosen);
    std::uint32_t backend_id_for(std::uint32_t service_id, const Backend& backend);
    void write_frontend(const FrontendKey& key, const Held& wanted);
    void delete_frontend(const FrontendKey& key);
    void delete_backend(std::uint32_t id, Written& written);  // once no slot names it
    // Maglev tables: what the map holds (stamps), a stamp of what a table
    // would be built from (M, and each backend id with its address and
    // port), and a table made whole, then swapped in.
    void load_tables();
    std::uint32_t table_stamp(const std::vector<std::uint32_t>& backend_ids) const;
    void write_table(std::uint32_t service_id, const std::vector<std::uint32_t>& backend_ids, std::uint32_t stamp);
    // Writes the table of `service_id` for `backend_ids` unless it holds them already.
    bool ensure_table(std::uint32_t service_id, std::vector<std::uint32_t> backend_ids);
    void delete_table(std::uint32_t service_id);
    // The counts and indexes that follow held_ (every change of held_ goes through these two).
    void hold(const FrontendKey& key, Held held);
    void release(const FrontendKey& key);

    int services_fd_;
    int backends_fd_;
    Capacity capacity_;
    Tables tables_config_;
    std::map<FrontendKey, Held> held_;
    std::map<std::string, std::set<FrontendKey>> keys_of_service_;  // service -> its held frontends
    std::map<std::uint32_t, std::size_t> id_users_;      // service number -> held frontends that have it
    std::map<std::uint32_t, std::size_t> backend_users_;  // backend id -> held slots that name it
    std::map<std::uint32_t, std::set<FrontendKey>> outside_keys_;  // service number -> its held outside frontends
    // Service number -> the stamp of its table in the map (nullopt: unreadable, made anew at the next sync).
    std::map<std::uint32_t, std::optional<std::uint32_t>> tables_;
    std::set<std::uint32_t> unnamed_;  // backend ids no held slot names: deleted at the end of a sync
    std::size_t slots_ = 0;            // services map entries of the held frontends (1 + backends each)
    bool owners_known_ = false;        // every held frontend's service is known (a sync since load())
    // Backend ids are per service port and backend, so a backend removed
    // from a service loses its id, and an affinity entry naming it lapses.
    std::map<std::uint32_t, std::pair<std::uint32_t, Backend>> backend_values_;  // id -> (service id, backend)
    std::map<std::pair<std::uint32_t, Backend>, std::uint32_t> backend_ids_;
    std::uint32_t next_backend_id_ = 1;
    std::uint32_t next_service_id_ = 1;
    std::uint32_t writer_ = 0;
};

}  // namespace membrane::service_lb
