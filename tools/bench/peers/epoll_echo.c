// epoll_echo: the plain epoll peer of the echo benchmark (issue 6). One thread, level-triggered
// epoll, non-blocking sockets; what a read brings is written straight back from one shared
// 64 KiB buffer. Only a short write keeps the rest in a per-connection buffer and stops reading
// that connection until EPOLLOUT has flushed it.
// Usage: epoll_echo PORT
#define _GNU_SOURCE // accept4
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { max_fds = 1 << 16, buffer_size = 65536 };

struct pending {
    char* data; // unsent rest of a short write (malloc'd), or NULL
    size_t len;
    size_t done;
};

static struct pending pending[max_fds];
static char buffer[buffer_size];
static int epoll_fd;

static void die(const char* what) {
    fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop(int fd) {
    free(pending[fd].data);
    pending[fd].data = NULL;
    close(fd); // also removes it from the epoll set
}

static void watch(int fd, unsigned events, int op) {
    struct epoll_event event = {0};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(epoll_fd, op, fd, &event);
}

/// Writes what is pending; returns 0 when all is gone, 1 if some is left, -1 on an error.
static int flush(int fd) {
    struct pending* p = &pending[fd];
    while (p->done < p->len) {
        ssize_t n = send(fd, p->data + p->done, p->len - p->done, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p->done += (size_t)n;
    }
    free(p->data);
    p->data = NULL;
    return 0;
}

static void on_readable(int fd) {
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop(fd);
        return;
    }
    if (n < 0)
        return;
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = send(fd, buffer + done, (size_t)n - done, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            drop(fd);
            return;
        }
        done += (size_t)w;
    }
    if (done < (size_t)n) {
        struct pending* p = &pending[fd];
        p->len = (size_t)n - done;
        p->done = 0;
        p->data = malloc(p->len);
        if (!p->data)
            die("malloc");
        memcpy(p->data, buffer + done, p->len);
        watch(fd, EPOLLOUT, EPOLL_CTL_MOD); // stop reading until the rest is out
    }
}

int main(int argc, char** argv) {
    int port = argc == 2 ? atoi(argv[1]) : 0;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: epoll_echo PORT\n");
        return 2;
    }
    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr*)&address, sizeof address) != 0)
        die("bind");
    if (listen(listen_fd, 4096) != 0)
        die("listen");
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    watch(listen_fd, EPOLLIN, EPOLL_CTL_ADD);
    printf("epoll_echo listening on %d\n", port);
    fflush(stdout);

    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 512, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listen_fd) {
                for (;;) {
                    int c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    if (c >= max_fds) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    watch(c, EPOLLIN, EPOLL_CTL_ADD);
                }
            } else if (pending[fd].data) {
                int r = flush(fd);
                if (r < 0)
                    drop(fd);
                else if (r == 0)
                    watch(fd, EPOLLIN, EPOLL_CTL_MOD);
            } else {
                on_readable(fd);
            }
        }
    }
}
