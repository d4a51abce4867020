// lb_probe: watches service-lb's pinned maps (modules/service-lb/bpf/lb_maps.h)
// for bench/service_load_bench.sh, to time an EndpointSlice change into the
// datapath without asking the agent (`membranectl lb list` reads every
// frontend: far too slow at 10,000 services to poll).
//
//   lb_probe wait PIN_DIR SERVICE_ADDR PORT BACKEND_ADDR BACKEND_PORT MAX_SECONDS
//       PIN_DIR holds service_lb_services_v1 and service_lb_backends_v1. Prints
//       "polling" (flushed) once it has looked and the backend is not among the
//       TCP frontend SERVICE_ADDR:PORT's slots 1..count; then looks again every
//       100 µs and, when the backend is there, prints "seen_us=T" with T the
//       CLOCK_REALTIME in µs (what bash's EPOCHREALTIME reads) and exits 0.
//       Exits 1 after MAX_SECONDS without it, 3 if it was there from the start,
//       2 on a usage or map error.
//
// Raw bpf(2) calls (BPF_OBJ_GET, BPF_MAP_LOOKUP_ELEM), so it builds with a
// plain `cc -I modules/service-lb`; the layouts are lb_maps.h's own.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpf/lb_maps.h"

static int map_open(const char* folder, const char* name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.pathname = (uint64_t)(uintptr_t)path;
    attr.file_flags = BPF_F_RDONLY;
    const int fd = (int)syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof attr);
    if (fd < 0) fprintf(stderr, "lb_probe: %s: %s\n", path, strerror(errno));
    return fd;
}

static int lookup(int fd, const void* key, void* value) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.value = (uint64_t)(uintptr_t)value;
    return (int)syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof attr);
}

// 1 if the frontend names the backend in one of its slots, 0 if not.
static int holds(int services, int backends, uint32_t address, uint16_t port, uint32_t backend_address,
                 uint16_t backend_port) {
    struct service_lb_key key = {.address = address, .port = port, .protocol = 6 /* TCP */};
    struct service_lb_value master;
    if (lookup(services, &key, &master) != 0) return 0;
    for (uint32_t slot = 1; slot <= master.count; slot++) {
        key.slot = slot;
        struct service_lb_value value;
        struct service_lb_backend backend;
        if (lookup(services, &key, &value) != 0 || lookup(backends, &value.backend_id, &backend) != 0) continue;
        if (backend.address == backend_address && backend.port == backend_port) return 1;
    }
    return 0;
}

static double realtime_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
    if (argc != 8 || strcmp(argv[1], "wait") != 0) {
        fprintf(stderr, "usage: lb_probe wait PIN_DIR SERVICE_ADDR PORT BACKEND_ADDR BACKEND_PORT MAX_SECONDS\n");
        return 2;
    }
    struct in_addr service, backend;
    const long port = strtol(argv[4], NULL, 10), backend_port = strtol(argv[6], NULL, 10);
    const long seconds = strtol(argv[7], NULL, 10);
    if (inet_pton(AF_INET, argv[3], &service) != 1 || inet_pton(AF_INET, argv[5], &backend) != 1 || port < 1 ||
        port > 65535 || backend_port < 1 || backend_port > 65535 || seconds < 1 || seconds > 3600) {
        fprintf(stderr, "lb_probe: bad arguments\n");
        return 2;
    }
    const int services = map_open(argv[2], "service_lb_services_v1");
    const int backends = map_open(argv[2], "service_lb_backends_v1");
    if (services < 0 || backends < 0) return 2;
    const uint16_t nport = htons((uint16_t)port), nbackend_port = htons((uint16_t)backend_port);
    if (holds(services, backends, service.s_addr, nport, backend.s_addr, nbackend_port)) {
        fprintf(stderr, "lb_probe: %s:%ld already has backend %s:%ld\n", argv[3], port, argv[5], backend_port);
        return 3;
    }
    printf("polling\n");
    fflush(stdout);
    const double deadline = realtime_us() + (double)seconds * 1e6;
    const struct timespec pause = {0, 100 * 1000};
    while (realtime_us() < deadline) {
        if (holds(services, backends, service.s_addr, nport, backend.s_addr, nbackend_port)) {
            printf("seen_us=%.0f\n", realtime_us());
            return 0;
        }
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "lb_probe: %s:%ld did not get backend %s:%ld within %ld s\n", argv[3], port, argv[5],
            backend_port, seconds);
    return 1;
}
