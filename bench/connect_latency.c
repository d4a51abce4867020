// connect_latency: how long a TCP connect() takes, one new connection after
// the other, for bench/service_bench.sh (connect latency vs number of
// services: kube-proxy's rules against Membrane's socket LB).
//
//   connect_latency ADDR PORT COUNT [MAX_SECONDS]
//       COUNT times { socket(); connect() (blocking) to ADDR:PORT; close() },
//       each connect+close timed with CLOCK_MONOTONIC (socket() is not).
//   connect_latency spread FILE PORT COUNT [random|rr] [MAX_SECONDS]
//       the same, each connection to an address of FILE (one IPv4 address a
//       line, at most 1,000,000): `random` (the default) draws one uniformly
//       for every connection (a fixed-seed xorshift, so runs draw the same
//       sequence), `rr` takes them in turn. With many services, random is the
//       honest one: COUNT connects in turn over 10,000 addresses would only
//       ever reach the first COUNT, the cheap end of an iptables chain.
//   connect_latency serve PORT SECONDS
//       accepts and closes connections on PORT (every address) until SECONDS
//       have passed (alarm()), listen backlog 4096.
//
// The client prints one line:
//   count=5000 errors=0 p50_us=41.2 p99_us=88.0 mean_us=44.9 seconds=0.25
// p50/p99 are nearest-rank percentiles of the timed connects; errors counts
// connects that failed (refused, or no answer within 1 s: a service address
// that nothing translated), and the exit status is 1 when any failed.
// Before the timed ones, min(COUNT / 10, 200) untimed connects warm the
// neighbour entries and caches.
//
// Ports: the client closes with SO_LINGER {1, 0}, a RST, so neither side keeps
// a TIME_WAIT socket and 20,000 connects in a row never run out of ephemeral
// ports. Bounded: COUNT is at most 1,000,000 and the client stops after
// MAX_SECONDS (default 120), printing what it measured so far.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_COUNT = 1000000, MAX_ADDRESSES = 1000000, BACKLOG = 4096 };
enum pick { PICK_RANDOM, PICK_ROUND_ROBIN };

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int serve(int port, unsigned seconds) {
    alarm(seconds);  // SIGALRM ends the server whatever happens
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                               .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, BACKLOG) != 0) {
        perror("connect_latency serve: bind/listen");
        return 1;
    }
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn >= 0) close(conn);
    }
}

// One connect + close to ADDR; returns its duration in µs, or -1 when the connect failed.
static double connect_once(const struct sockaddr_in* addr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval timeout = {.tv_sec = 1};  // bounds a blocking connect (SYN never answered)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct linger rst = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
    const double start = now_us();
    const int rc = connect(fd, (const struct sockaddr*)addr, sizeof *addr);
    close(fd);
    return rc == 0 ? now_us() - start : -1;
}

static int compare_doubles(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static double percentile(const double* sorted, long n, double p) {  // nearest rank
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static uint64_t xorshift64(uint64_t* state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static int measure(struct sockaddr_in* addresses, long n_addresses, enum pick pick, long count, double max_seconds) {
    double* samples = malloc((size_t)count * sizeof *samples);
    if (samples == NULL) {
        perror("connect_latency: samples");
        return 1;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    long next = 0, errors = 0, taken = 0;
#define NEXT_ADDRESS() (&addresses[pick == PICK_RANDOM ? (long)(xorshift64(&seed) % (uint64_t)n_addresses) \
                                                       : next++ % n_addresses])
    const long warmup = count / 10 < 200 ? count / 10 : 200;
    for (long i = 0; i < warmup; ++i) {
        if (connect_once(NEXT_ADDRESS()) < 0) ++errors;
    }
    const double start = now_us(), deadline = start + max_seconds * 1e6;
    for (long i = 0; i < count && now_us() < deadline; ++i) {
        const double us = connect_once(NEXT_ADDRESS());
        if (us < 0) {
            ++errors;
            if (errors > 20) break;  // nothing translates: say so instead of waiting 1 s each
            continue;
        }
        samples[taken++] = us;
    }
#undef NEXT_ADDRESS
    const double seconds = (now_us() - start) / 1e6;
    if (taken == 0) {
        printf("count=0 errors=%ld p50_us=0 p99_us=0 mean_us=0 seconds=%.2f\n", errors, seconds);
        free(samples);
        return 1;
    }
    double sum = 0;
    for (long i = 0; i < taken; ++i) sum += samples[i];
    qsort(samples, (size_t)taken, sizeof *samples, compare_doubles);
    printf("count=%ld errors=%ld p50_us=%.1f p99_us=%.1f mean_us=%.1f seconds=%.2f\n", taken, errors,
           percentile(samples, taken, 50), percentile(samples, taken, 99), sum / (double)taken, seconds);
    free(samples);
    return errors ? 1 : 0;
}

static int parse_address(const char* text, int port, struct sockaddr_in* out) {
    *out = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, text, &out->sin_addr) == 1) return 0;
    fprintf(stderr, "connect_latency: '%s' is not an IPv4 address\n", text);
    return -1;
}

static long read_addresses(const char* file, int port, struct sockaddr_in** out) {
    FILE* in = fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "connect_latency: %s: %s\n", file, strerror(errno));
        return -1;
    }
    long n = 0, capacity = 1024;
    struct sockaddr_in* addresses = malloc((size_t)capacity * sizeof *addresses);
    char line[64];
    while (addresses != NULL && fgets(line, sizeof line, in) != NULL) {
        line[strcspn(line, " \t\r\n")] = '\0';
        if (line[0] == '\0') continue;
        if (n == MAX_ADDRESSES) {
            fprintf(stderr, "connect_latency: %s: more than %d addresses\n", file, MAX_ADDRESSES);
            n = -1;
            break;
        }
        if (n == capacity) {
            capacity *= 2;
            struct sockaddr_in* grown = realloc(addresses, (size_t)capacity * sizeof *addresses);
            if (grown == NULL) break;
            addresses = grown;
        }
        if (parse_address(line, port, &addresses[n]) != 0) {
            n = -1;
            break;
        }
        ++n;
    }
    fclose(in);
    if (n <= 0) {
        if (n == 0) fprintf(stderr, "connect_latency: %s holds no address\n", file);
        free(addresses);
        return -1;
    }
    *out = addresses;
    return n;
}

static long parse_count(const char* text) {
    char* end;
    const long count = strtol(text, &end, 10);
    if (*end != '\0' || count < 1 || count > MAX_COUNT) {
        fprintf(stderr, "connect_latency: COUNT '%s' is not within 1..%d\n", text, MAX_COUNT);
        return -1;
    }
    return count;
}

static int usage(void) {
    fprintf(stderr,
            "usage: connect_latency ADDR PORT COUNT [MAX_SECONDS]\n"
            "       connect_latency spread FILE PORT COUNT [random|rr] [MAX_SECONDS]\n"
            "       connect_latency serve PORT SECONDS\n");
    return 2;
}

int main(int argc, char** argv) {
    if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]), (unsigned)atoi(argv[3]));
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "spread") == 0) {
        const int port = atoi(argv[3]);
        const long count = parse_count(argv[4]);
        enum pick pick = PICK_RANDOM;
        int next_arg = 5;
        if (argc > 5 && (strcmp(argv[5], "random") == 0 || strcmp(argv[5], "rr") == 0)) {
            pick = strcmp(argv[5], "rr") == 0 ? PICK_ROUND_ROBIN : PICK_RANDOM;
            next_arg = 6;
        }
        if (argc > next_arg + 1) return usage();
        const double max_seconds = argc > next_arg ? atof(argv[next_arg]) : 120;
        struct sockaddr_in* addresses;
        const long n = count < 0 ? -1 : read_addresses(argv[2], port, &addresses);
        if (n < 0) return 2;
        const int rc = measure(addresses, n, pick, count, max_seconds);
        free(addresses);
        return rc;
    }
    if (argc == 4 || argc == 5) {
        struct sockaddr_in address;
        const long count = parse_count(argv[3]);
        if (count < 0 || parse_address(argv[1], atoi(argv[2]), &address) != 0) return 2;
        return measure(&address, 1, PICK_ROUND_ROBIN, count, argc == 5 ? atof(argv[4]) : 120);
    }
    return usage();
}
