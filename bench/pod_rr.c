// pod_rr: TCP request/response rate between two pods, like netperf's TCP_RR
// (netperf is not in Debian main): one connection, 1-byte request, 1-byte
// response, as fast as the round trip allows.
//
//   pod_rr server PORT LIFETIME_SECONDS      serves connections one after the other
//   pod_rr client ADDRESS PORT SECONDS       prints "<transactions per second>"
//
// Both ends are bounded in time (the server by alarm(), the client by its
// duration), so a benchmark can never hang on it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void no_delay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int serve(int port, unsigned lifetime) {
    alarm(lifetime);  // SIGALRM ends the server whatever happens
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                               .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 4) != 0) {
        perror("pod_rr server: bind/listen");
        return 1;
    }
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) continue;
        no_delay(conn);
        char byte;
        while (recv(conn, &byte, 1, 0) == 1) {
            if (send(conn, &byte, 1, 0) != 1) break;
        }
        close(conn);
    }
}

static int client(const char* address, int port, double seconds) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
        fprintf(stderr, "pod_rr client: '%s' is not an IPv4 address\n", address);
        return 2;
    }
    struct timeval timeout = {.tv_sec = 2};  // a lost segment must not hang the client
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        perror("pod_rr client: connect");
        return 1;
    }
    no_delay(fd);
    unsigned long transactions = 0;
    char byte = 'x';
    const double start = now_seconds();
    double elapsed = 0;
    while (elapsed < seconds) {
        if (send(fd, &byte, 1, 0) != 1 || recv(fd, &byte, 1, 0) != 1) {
            perror("pod_rr client: exchange");
            return 1;
        }
        ++transactions;
        elapsed = now_seconds() - start;
    }
    close(fd);
    printf("%.0f\n", (double)transactions / elapsed);
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 4 && strcmp(argv[1], "server") == 0) return serve(atoi(argv[2]), (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "client") == 0) return client(argv[2], atoi(argv[3]), atof(argv[4]));
    fprintf(stderr, "usage: pod_rr server PORT LIFETIME_SECONDS | pod_rr client ADDRESS PORT SECONDS\n");
    return 2;
}
