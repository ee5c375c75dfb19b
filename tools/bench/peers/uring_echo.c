// uring_echo: the raw liburing peer of the echo benchmark (issue 6), the practical limit for one
// core: one ring (SINGLE_ISSUER | DEFER_TASKRUN), one multishot accept, one multishot recv per
// connection that picks its buffers from a provided-buffer ring, and one io_uring_enter per loop
// iteration (submit and wait together). A received buffer is sent back as it is and returned to
// the buffer ring when its send completes; a connection has at most one send in flight, so its
// echoes cannot be reordered by a send that had to wait for socket space.
// Usage: uring_echo PORT [BUFFER_SIZE [BUFFER_COUNT]]   (defaults 4096 and 8192, count a power
// of two up to 32768)
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { op_accept = 1, op_recv = 2, op_send = 3 };
enum { buffer_group = 0, max_fds = 1 << 16, queue_capacity = 64 };

struct chunk {
    unsigned short bid;
    unsigned len;
    unsigned done;
};

struct conn {
    int fd;
    int recv_armed; // a multishot recv is in flight
    int send_armed; // a send is in flight (the head of the queue)
    int closing;    // EOF or an error: close once nothing is in flight
    unsigned head;  // queue of received chunks waiting to be echoed
    unsigned count;
    struct chunk queue[queue_capacity];
};

static struct io_uring ring;
static struct io_uring_buf_ring* buffers_ring;
static char* buffers;
static unsigned buffer_size = 4096, buffer_count = 8192;
static unsigned buffers_returned; // added to the buffer ring since the last advance
static struct conn* conns[max_fds];
static int starved[max_fds]; // connections whose recv ended with ENOBUFS, to re-arm
static int starved_count;
static int listen_fd;

static void die(const char* what, int error) {
    fprintf(stderr, "uring_echo: %s: %s\n", what, strerror(error));
    exit(1);
}

static struct io_uring_sqe* get_sqe(void) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        // The submission queue is full (a burst of accepts): flush it without waiting.
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
        if (!sqe)
            die("io_uring_get_sqe", EBUSY);
    }
    return sqe;
}

static uint64_t tag(int fd, int op) {
    return ((uint64_t)fd << 8) | (uint64_t)op;
}

static void arm_accept(void) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, tag(listen_fd, op_accept));
}

static void arm_recv(struct conn* c) {
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data64(sqe, tag(c->fd, op_recv));
    c->recv_armed = 1;
}

static void arm_send(struct conn* c) {
    struct chunk* ch = &c->queue[c->head];
    struct io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, c->fd, buffers + (size_t)ch->bid * buffer_size + ch->done,
                       ch->len - ch->done, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(c->fd, op_send));
    c->send_armed = 1;
}

static void return_buffer(unsigned short bid) {
    io_uring_buf_ring_add(buffers_ring, buffers + (size_t)bid * buffer_size, buffer_size, bid,
                          io_uring_buf_ring_mask(buffer_count), (int)buffers_returned);
    ++buffers_returned;
}

static void maybe_close(struct conn* c) {
    if (!c->closing || c->recv_armed || c->send_armed)
        return;
    while (c->count > 0) {
        return_buffer(c->queue[c->head].bid);
        c->head = (c->head + 1) % queue_capacity;
        --c->count;
    }
    conns[c->fd] = NULL;
    close(c->fd);
    free(c);
}

static void start_closing(struct conn* c) {
    if (!c->closing && c->recv_armed)
        shutdown(c->fd, SHUT_RDWR); // ends the multishot recv
    c->closing = 1;
    maybe_close(c);
}

static void on_accept(struct io_uring_cqe* cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE))
        arm_accept();
    if (cqe->res < 0) {
        fprintf(stderr, "uring_echo: accept: %s\n", strerror(-cqe->res));
        return;
    }
    int fd = cqe->res;
    if (fd >= max_fds) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* c = calloc(1, sizeof *c);
    if (!c)
        die("calloc", ENOMEM);
    c->fd = fd;
    conns[fd] = c;
    arm_recv(c);
}

static void on_recv(struct conn* c, struct io_uring_cqe* cqe) {
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more)
        c->recv_armed = 0;
    if (cqe->res > 0) {
        unsigned short bid = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->closing || c->count == queue_capacity) {
            return_buffer(bid);
            start_closing(c);
            return;
        }
        struct chunk* ch = &c->queue[(c->head + c->count) % queue_capacity];
        ch->bid = bid;
        ch->len = (unsigned)cqe->res;
        ch->done = 0;
        ++c->count;
        if (!c->send_armed)
            arm_send(c);
        if (!more && !c->closing)
            arm_recv(c);
    } else if (cqe->res == -ENOBUFS && !c->closing) {
        starved[starved_count++] = c->fd; // re-armed once buffers come back
    } else if (!more) {
        start_closing(c); // end of stream or an error
    }
}

static void on_send(struct conn* c, struct io_uring_cqe* cqe) {
    c->send_armed = 0;
    if (cqe->res < 0) {
        start_closing(c);
        return;
    }
    struct chunk* ch = &c->queue[c->head];
    ch->done += (unsigned)cqe->res;
    if (ch->done == ch->len) {
        return_buffer(ch->bid);
        c->head = (c->head + 1) % queue_capacity;
        --c->count;
    }
    if (c->count > 0 && !c->closing)
        arm_send(c);
    else
        maybe_close(c);
}

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: uring_echo PORT [BUFFER_SIZE [BUFFER_COUNT]]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (argc > 2)
        buffer_size = (unsigned)atoi(argv[2]);
    if (argc > 3)
        buffer_count = (unsigned)atoi(argv[3]);
    if (port <= 0 || port > 65535 || buffer_size == 0 || buffer_count == 0 ||
        buffer_count > 32768 || (buffer_count & (buffer_count - 1)) != 0) {
        fprintf(stderr, "uring_echo: bad arguments\n");
        return 2;
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr*)&address, sizeof address) != 0)
        die("bind", errno);
    if (listen(listen_fd, 4096) != 0)
        die("listen", errno);

    struct io_uring_params params = {0};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    params.cq_entries = 65536;
    int r = io_uring_queue_init_params(4096, &ring, &params);
    if (r < 0)
        die("io_uring_queue_init_params", -r);

    // The provided-buffer ring: its entries must be page-aligned memory shared with the kernel.
    void* ring_memory = NULL;
    if (posix_memalign(&ring_memory, 4096, buffer_count * sizeof(struct io_uring_buf)) != 0)
        die("posix_memalign", ENOMEM);
    buffers_ring = ring_memory;
    io_uring_buf_ring_init(buffers_ring);
    struct io_uring_buf_reg registration = {0};
    registration.ring_addr = (uint64_t)(uintptr_t)buffers_ring;
    registration.ring_entries = buffer_count;
    registration.bgid = buffer_group;
    r = io_uring_register_buf_ring(&ring, &registration, 0);
    if (r < 0)
        die("io_uring_register_buf_ring", -r);
    buffers = malloc((size_t)buffer_size * buffer_count);
    if (!buffers)
        die("malloc", ENOMEM);
    for (unsigned i = 0; i < buffer_count; ++i)
        return_buffer((unsigned short)i);
    io_uring_buf_ring_advance(buffers_ring, (int)buffers_returned);
    buffers_returned = 0;

    arm_accept();
    printf("uring_echo listening on %d\n", port);
    fflush(stdout);
    for (;;) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            die("io_uring_submit_and_wait", -r);
        unsigned head, seen = 0;
        struct io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            int fd = (int)(cqe->user_data >> 8);
            int op = (int)(cqe->user_data & 0xff);
            if (op == op_accept) {
                on_accept(cqe);
                continue;
            }
            struct conn* c = conns[fd];
            if (!c)
                continue;
            if (op == op_recv)
                on_recv(c, cqe);
            else
                on_send(c, cqe);
        }
        io_uring_cq_advance(&ring, seen);
        if (buffers_returned > 0) {
            io_uring_buf_ring_advance(buffers_ring, (int)buffers_returned);
            buffers_returned = 0;
            for (int i = 0; i < starved_count; ++i) {
                struct conn* c = conns[starved[i]];
                if (c && !c->closing && !c->recv_armed)
                    arm_recv(c);
            }
            starved_count = 0;
        }
    }
}
