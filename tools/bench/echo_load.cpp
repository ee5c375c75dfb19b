// echo_load: the load generator of the echo benchmark (issue 6). Opens C connections to an echo
// server on a loopback address, keeps every connection ping-ponging S-byte messages (send one,
// wait for all of its echo, send the next) for D seconds after a warm-up, verifies every echoed
// byte, and prints throughput, latency percentiles, integrity counters and CPU use; the last line
// is machine-readable: `RESULT key=value ...`.
// Threads: --threads T workers (epoll, or io_uring with --engine uring) share the connections;
// the main thread only times the phases and reads /proc. Every message differs (a
// per-connection window into a random pattern that moves by one byte per message), so a stale
// or misrouted echo is caught.
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <liburing.h>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::size_t connections = 100;
    std::size_t size = 64;
    double duration = 5.0;
    double warmup = 1.0;
    std::size_t threads = 1;
    long server_pid = 0;
    bool signal_server = false; // SIGUSR1 at the window's start, SIGUSR2 at its end
    bool quiet = false;
    bool uring = false;  // --engine uring
    bool sliced = false; // --sliced: runs only between SIGUSR2 and SIGUSR1 (namespace gate)
    double rate = 0;     // --rate: messages per second over all connections; 0: as fast as echoed
};

/// Phases the main thread moves the workers through.
enum Phase : int { connecting = 0, warming = 1, measuring = 2, draining = 3, stopped = 4 };
std::atomic<int> phase{connecting};
/// Workers that have left their loop.
std::atomic<std::size_t> workers_done{0};

/// --sliced: SIGUSR1 asks the load to hold (start no message), SIGUSR2 to run again; it starts
/// held. A hold takes effect once the messages in flight have come back, and the load then
/// prints HELD: run_echo waits for that line before it lets the next server's load run, so that
/// no server drains its backlog in another's turn. The warm-up and the measured window count
/// only the time the load ran (holds begin when HELD is printed).
namespace gate {
std::atomic<bool> hold_wanted{false}; // the last signal; read by the workers
// The rest is the main thread's (poll() and the marks).
bool held = false;
std::int64_t held_ns = 0;    // the holds that ended
std::int64_t held_since = 0; // when the current hold began

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               bench_clock::now().time_since_epoch())
        .count();
}

void on_signal(int signo) noexcept {
    hold_wanted.store(signo == SIGUSR1);
}

void install() {
    held = true;
    held_since = now_ns();
    hold_wanted.store(true);
    struct sigaction action {};
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGUSR1, &action, nullptr);
    ::sigaction(SIGUSR2, &action, nullptr);
}

/// Follows the signals: a wanted hold begins once `in_flight` is 0, and a resume ends it.
void poll(std::size_t in_flight) {
    bool want = hold_wanted.load();
    if (want && !held && in_flight == 0) {
        held = true;
        held_since = now_ns();
        std::printf("HELD\n");
        std::fflush(stdout);
    } else if (!want && held) {
        held = false;
        held_ns += now_ns() - held_since;
    }
}

/// An instant, and the nanoseconds held before it.
struct Mark {
    std::int64_t at;
    std::int64_t held;
};

Mark mark() noexcept {
    std::int64_t now = now_ns();
    return Mark{now, held_ns + (held ? now - held_since : 0)};
}

/// Seconds the load ran between two marks (all of them without --sliced).
double running_seconds(Mark from, Mark to) noexcept {
    return static_cast<double>((to.at - from.at) - (to.held - from.held)) / 1e9;
}
} // namespace gate

/// Latency histogram: 64 linear sub-buckets per power of two of nanoseconds (error < 1.6%).
class Histogram {
  public:
    static constexpr int sub_bits = 6;
    static constexpr int sub_count = 1 << sub_bits;
    static constexpr int bucket_count = 64 * sub_count;

    void record(std::uint64_t ns) noexcept {
        ++counts_[index_of(ns)];
        ++total_;
    }
    void merge(const Histogram& other) noexcept {
        for (int i = 0; i < bucket_count; ++i)
            counts_[i] += other.counts_[i];
        total_ += other.total_;
    }
    std::uint64_t total() const noexcept { return total_; }
    /// The value below which a fraction `q` of the samples lie (upper edge of its bucket), in ns.
    double quantile(double q) const noexcept {
        if (total_ == 0)
            return 0;
        auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
        rank = std::max<std::uint64_t>(rank, 1);
        std::uint64_t seen = 0;
        for (int i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= rank)
                return static_cast<double>(upper_edge(i));
        }
        return static_cast<double>(upper_edge(bucket_count - 1));
    }

  private:
    static int index_of(std::uint64_t v) noexcept {
        if (v < sub_count)
            return static_cast<int>(v);
        int log = 63 - __builtin_clzll(v); // >= sub_bits
        int shift = log - sub_bits;
        return (shift + 1) * sub_count + static_cast<int>((v >> shift) & (sub_count - 1));
    }
    static std::uint64_t upper_edge(int index) noexcept {
        if (index < sub_count)
            return static_cast<std::uint64_t>(index);
        int shift = index / sub_count - 1;
        std::uint64_t base = (std::uint64_t{sub_count} + (index % sub_count)) << shift;
        return base + (std::uint64_t{1} << shift) - 1;
    }

    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(bucket_count);
    std::uint64_t total_ = 0;
};

/// Counters one worker publishes; the main thread reads them at the window's edges.
struct alignas(64) WorkerCounters {
    std::atomic<std::uint64_t> messages{0};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> mismatches{0};
    std::atomic<std::uint64_t> connected{0};
    std::atomic<std::size_t> in_flight{0}; // messages out and not yet fully echoed
};

struct Connection {
    int fd = -1;
    std::uint32_t id = 0;
    std::uint64_t counter = 0; // messages completed on this connection
    std::size_t sent = 0;      // bytes of the current message sent
    std::size_t received = 0;  // bytes of its echo received
    bool mismatched = false;   // the current echo already counted as a mismatch
    bool busy = false;         // a message is out and its echo not complete
    bool want_write = false;   // EPOLLOUT registered (a short send is pending)
    bench_clock::time_point started;
};

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

/// What both engines share: the connections, the pattern, verification and the counters.
class Worker {
  public:
    Worker(const Options& options, const sockaddr_in& address, const std::byte* pattern,
           std::size_t pattern_period, std::uint32_t first_id, std::size_t count)
        : options_(options), address_(address), pattern_(pattern), period_(pattern_period),
          first_id_(first_id), connections_(count) {
        for (std::size_t i = 0; i < connections_.size(); ++i)
            connections_[i].id = first_id_ + static_cast<std::uint32_t>(i);
    }
    virtual ~Worker() = default;

    WorkerCounters counters;
    Histogram latencies;

    /// Connects, waits for the warm-up, then ping-pongs until the main thread stops it.
    virtual void run() = 0;
    /// Closes the connections (after the main thread has read the server's idle figures).
    virtual void close_all() = 0;

  protected:
    /// Starts the next message on `c` (or defers it, see begin_message).
    virtual void start_message(Connection& c) = 0;
    const std::byte* expected(const Connection& c) const noexcept {
        return pattern_ + (c.id * 7 + c.counter) % period_;
    }
    std::uint32_t index(const Connection& c) const noexcept {
        return static_cast<std::uint32_t>(&c - connections_.data());
    }
    bool keep_running() const noexcept {
        int current = phase.load(std::memory_order_relaxed);
        return current != stopped && !(current == draining && in_flight() == 0);
    }
    static void wait_for_start() {
        while (phase.load(std::memory_order_acquire) == connecting)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    void fail(Connection& c, const char* what, int error) {
        bump(counters.errors);
        if (!options_.quiet && counters.errors.load(std::memory_order_relaxed) <= 5)
            std::fprintf(stderr, "echo_load: connection %u: %s: %s\n", c.id, what,
                         error ? std::strerror(error) : "closed by the server");
        if (c.fd >= 0) {
            ::shutdown(c.fd, SHUT_RDWR); // ends an io_uring recv still waiting on it
            ::close(c.fd);
            c.fd = -1;
        }
        if (std::exchange(c.busy, false))
            add_in_flight(-1);
    }

    /// Blocking connect (loopback completes the handshake within the call while the server's
    /// backlog has room, and retransmits the SYN after 1 s when it has not), then TCP_NODELAY.
    bool connect(Connection& c) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fail(c, "socket", errno);
            return false;
        }
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0) {
            int error = errno;
            ::close(fd);
            fail(c, "connect", error);
            return false;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c.fd = fd;
        return true;
    }

    /// Starts the next message unless the window is over (the connection then stays idle), or
    /// --rate or the --sliced gate holds it back (it waits in paced_ for release_paced).
    bool begin_message(Connection& c) {
        if (c.fd < 0 || phase.load(std::memory_order_relaxed) >= draining)
            return false; // failed while held back, or the window is over
        if (gate::hold_wanted.load(std::memory_order_relaxed) || !take_token()) {
            paced_.push_back(index(c));
            return false;
        }
        c.sent = 0;
        c.received = 0;
        c.mismatched = false;
        c.started = bench_clock::now();
        c.busy = true;
        add_in_flight(1);
        return true;
    }

    /// Checks `got` echoed bytes that landed at `data`, of which the server may have had at
    /// most `sent` bytes so far; false if the connection failed.
    bool verify(Connection& c, const std::byte* data, std::size_t got, std::size_t sent) {
        if (got > options_.size - c.received || sent < c.received + got) {
            // More bytes than were sent: the server made some up.
            fail(c, "echo longer than the message", EPROTO);
            bump(counters.mismatches);
            return false;
        }
        if (!c.mismatched && std::memcmp(data, expected(c) + c.received, got) != 0) {
            c.mismatched = true;
            bump(counters.mismatches);
        }
        c.received += got;
        return true;
    }

    /// Counts the completed echo of `c` and starts its next message.
    void finish_message(Connection& c) {
        c.busy = false;
        add_in_flight(-1);
        ++c.counter;
        bump(counters.messages);
        bump(counters.bytes, options_.size);
        if (phase.load(std::memory_order_relaxed) == measuring) {
            auto took = bench_clock::now() - c.started;
            latencies.record(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
        }
        start_message(c);
    }

    /// Starts the held-back messages the rate and the gate allow by now, oldest first.
    void release_paced() {
        while (!paced_.empty() && !gate::hold_wanted.load(std::memory_order_relaxed) &&
               tokens() >= 1) {
            std::uint32_t index = paced_.front();
            paced_.pop_front();
            start_message(connections_[index]);
        }
    }
    /// How long a wait may block: short while messages are held back (rate or gate).
    int wait_milliseconds() const noexcept { return paced_.empty() ? 10 : 1; }

    const Options& options_;
    sockaddr_in address_;
    const std::byte* pattern_;
    std::size_t period_;
    std::uint32_t first_id_;
    std::vector<Connection> connections_;

    // Messages out and not yet echoed: this worker writes the count, the main thread reads it.
    std::size_t in_flight() const noexcept {
        return counters.in_flight.load(std::memory_order_relaxed);
    }
    void add_in_flight(std::ptrdiff_t delta) noexcept {
        counters.in_flight.store(in_flight() + static_cast<std::size_t>(delta),
                                 std::memory_order_relaxed);
    }

  private:
    /// This worker's share of --rate, in messages per second (0: unpaced).
    double rate() const noexcept {
        return options_.rate * static_cast<double>(connections_.size()) /
               static_cast<double>(options_.connections);
    }
    /// Messages the rate allows that have not started yet. A backlog is capped at 1 ms worth,
    /// so that a stall is not followed by a burst.
    double tokens() {
        if (options_.rate <= 0)
            return 1;
        auto now = bench_clock::now();
        if (paced_start_ == bench_clock::time_point{})
            paced_start_ = now;
        double allowed = rate() * std::chrono::duration<double>(now - paced_start_).count();
        double burst = std::max(1.0, rate() / 1000);
        if (allowed - started_ > burst)
            started_ = allowed - burst;
        return allowed - started_;
    }
    bool take_token() {
        if (options_.rate <= 0)
            return true;
        if (tokens() < 1)
            return false;
        started_ += 1;
        return true;
    }

    std::deque<std::uint32_t> paced_; // connections whose next message waits for the rate
    bench_clock::time_point paced_start_{};
    double started_ = 0; // messages started under the rate (fractional after a capped stall)
};

/// epoll, non-blocking sockets: send, then recv on EPOLLIN (three system calls per message).
class EpollWorker final : public Worker {
  public:
    using Worker::Worker;

    void run() override {
        epoll_ = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) {
            std::perror("echo_load: epoll_create1");
            std::exit(1);
        }
        receive_buffer_.resize(options_.size);
        for (Connection& c : connections_)
            open(c);
        wait_for_start();
        for (Connection& c : connections_)
            start_message(c);
        std::vector<epoll_event> events(256);
        while (keep_running()) {
            release_paced();
            int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()),
                               wait_milliseconds());
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                std::perror("echo_load: epoll_wait");
                std::exit(1);
            }
            for (int i = 0; i < n; ++i) {
                Connection& c = connections_[events[i].data.u32];
                if (c.fd < 0)
                    continue;
                if ((events[i].events & EPOLLOUT) && c.sent < options_.size)
                    send_some(c);
                if (c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                    receive(c);
            }
        }
        workers_done.fetch_add(1);
    }

    void close_all() override {
        for (Connection& c : connections_)
            if (c.fd >= 0)
                ::close(std::exchange(c.fd, -1));
        if (epoll_ >= 0)
            ::close(epoll_);
    }

  private:
    void open(Connection& c) {
        if (!connect(c))
            return;
        ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u32 = index(c);
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event) != 0) {
            fail(c, "epoll_ctl", errno);
            return;
        }
        bump(counters.connected);
    }

    void set_want_write(Connection& c, bool on) {
        if (c.want_write == on)
            return;
        c.want_write = on;
        epoll_event event{};
        event.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        event.data.u32 = index(c);
        epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
    }

    void start_message(Connection& c) override {
        if (begin_message(c))
            send_some(c);
    }

    void send_some(Connection& c) {
        const std::byte* data = expected(c);
        while (c.sent < options_.size) {
            ssize_t n = ::send(c.fd, data + c.sent, options_.size - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                set_want_write(c, true);
                return;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                fail(c, "send", n < 0 ? errno : 0);
                return;
            }
        }
        set_want_write(c, false);
    }

    void receive(Connection& c) {
        for (;;) {
            std::size_t want = options_.size - c.received;
            // Ask for one byte more than the echo still owes: an extra byte is a protocol error.
            ssize_t n = ::recv(c.fd, receive_buffer_.data(), std::min(want + 1, options_.size), 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                fail(c, "recv", errno);
                return;
            }
            if (n == 0) {
                fail(c, "recv", 0);
                return;
            }
            if (!verify(c, receive_buffer_.data(), static_cast<std::size_t>(n), c.sent))
                return;
            if (c.received == options_.size) {
                finish_message(c);
                return; // the next message is sent; its echo cannot be here yet
            }
        }
    }

    std::vector<std::byte> receive_buffer_;
    int epoll_ = -1;
};

/// io_uring: one multishot recv per connection into a provided-buffer ring, armed once, and per
/// message one send that posts a completion only if it fails; one io_uring_enter per batch.
/// Under full load the batches grow, so a message costs the load less CPU than the epoll
/// engine's three system calls, and the server rather than the load sets the pace.
class UringWorker final : public Worker {
  public:
    using Worker::Worker;

    void run() override {
        setup_ring();
        setup_buffers();
        for (Connection& c : connections_)
            if (connect(c)) {
                bump(counters.connected);
                arm_recv(c);
            }
        wait_for_start();
        for (Connection& c : connections_)
            start_message(c);
        while (keep_running()) {
            release_paced();
            // Bounded: notice the phase changes and the rate's next messages.
            __kernel_timespec timeout{0, wait_milliseconds() * 1'000'000LL};
            io_uring_cqe* cqe = nullptr;
            int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
            if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
                std::fprintf(stderr, "echo_load: io_uring_submit_and_wait_timeout: %s\n",
                             std::strerror(-rc));
                std::exit(1);
            }
            unsigned head;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                complete(*cqe);
            }
            io_uring_cq_advance(&ring_, seen);
            publish_returned(); // the kernel sees this batch's buffers at the next entry
        }
        workers_done.fetch_add(1);
    }

    void close_all() override {
        io_uring_queue_exit(&ring_); // cancels what is still in flight
        if (buffer_ring_ != nullptr)
            ::munmap(buffer_ring_, buffer_count_ * sizeof(io_uring_buf));
        for (Connection& c : connections_)
            if (c.fd >= 0)
                ::close(std::exchange(c.fd, -1));
    }

  private:
    enum Op : std::uint64_t { send_op = 0, recv_op = 1 };
    static constexpr std::uint16_t buffer_group = 0;

    [[noreturn]] static void unsupported(const char* what, int error) {
        std::fprintf(stderr,
                     "echo_load: %s: %s (--engine uring needs Linux 6.1+; try --engine epoll)\n",
                     what, std::strerror(error));
        std::exit(1);
    }

    void setup_ring() {
        unsigned entries = 256;
        while (entries < 2 * connections_.size() && entries < 16384)
            entries *= 2;
        io_uring_params params{};
        params.flags =
            IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        params.cq_entries = 4 * entries;
        int rc = io_uring_queue_init_params(entries, &ring_, &params);
        if (rc < 0)
            unsupported("io_uring_queue_init_params", -rc);
    }

    /// A buffer per connection (a power of two, 8 to 4,096, at most 16 MiB in all) of up to
    /// 16 KiB; a connection whose recv finds the ring empty re-arms it (see complete()).
    void setup_buffers() {
        buffer_size_ = static_cast<std::uint32_t>(std::min<std::size_t>(options_.size, 16384));
        buffer_count_ = 8;
        while (buffer_count_ < connections_.size() && buffer_count_ < 4096 &&
               std::size_t{2} * buffer_count_ * buffer_size_ <= (16u << 20))
            buffer_count_ *= 2;
        buffers_.resize(std::size_t{buffer_count_} * buffer_size_);
        void* memory = ::mmap(nullptr, buffer_count_ * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED)
            unsupported("mmap", errno);
        buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
        io_uring_buf_ring_init(buffer_ring_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(buffer_ring_);
        reg.ring_entries = buffer_count_;
        reg.bgid = buffer_group;
        if (int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc != 0)
            unsupported("io_uring_register_buf_ring", -rc);
        for (std::uint32_t id = 0; id < buffer_count_; ++id)
            give_back(id);
        publish_returned();
    }

    std::byte* buffer(std::uint32_t id) noexcept {
        return buffers_.data() + std::size_t{id} * buffer_size_;
    }
    /// Returns buffer `id` to the ring, for the kernel once publish_returned() has run.
    void give_back(std::uint32_t id) noexcept {
        io_uring_buf_ring_add(buffer_ring_, buffer(id), buffer_size_,
                              static_cast<std::uint16_t>(id), buffer_count_ - 1,
                              static_cast<int>(returned_++));
    }
    /// Moves the ring's tail past the buffers given back since the last call (one store).
    void publish_returned() noexcept {
        io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(std::exchange(returned_, 0)));
    }

    io_uring_sqe* sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        while (sqe == nullptr) { // SQ full: hand it to the kernel
            io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    std::uint64_t tag(const Connection& c, Op op) const noexcept {
        return (std::uint64_t{index(c)} << 1) | op;
    }

    void arm_recv(Connection& c) {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = buffer_group;
        io_uring_sqe_set_data64(s, tag(c, recv_op));
    }

    /// The whole message in one send: MSG_WAITALL makes the kernel finish a short send itself,
    /// so a completion (kept only on failure) means the connection failed.
    void start_message(Connection& c) override {
        if (!begin_message(c))
            return;
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, expected(c), options_.size, MSG_NOSIGNAL | MSG_WAITALL);
        s->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(s, tag(c, send_op));
        c.sent = options_.size;
    }

    void complete(const io_uring_cqe& cqe) {
        Connection& c = connections_[cqe.user_data >> 1];
        if ((cqe.user_data & 1) == send_op) {
            if (c.fd >= 0)
                fail(c, "send", cqe.res < 0 ? -cqe.res : EPIPE); // failed, or short: broken
            return;
        }
        const auto id = static_cast<std::uint32_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        if (cqe.res > 0 && c.fd >= 0) {
            // A byte beyond the message fails the connection ("echo longer than the message").
            if (verify(c, buffer(id), static_cast<std::size_t>(cqe.res), c.sent) &&
                c.received == options_.size)
                finish_message(c);
        }
        if (cqe.flags & IORING_CQE_F_BUFFER)
            give_back(id);
        if (c.fd < 0 || (cqe.flags & IORING_CQE_F_MORE))
            return;
        if (cqe.res == -ENOBUFS || cqe.res > 0) // the ring ran dry, or the kernel ended it
            arm_recv(c);
        else
            fail(c, "recv", cqe.res < 0 ? -cqe.res : 0);
    }

    io_uring ring_{};
    io_uring_buf_ring* buffer_ring_ = nullptr;
    std::vector<std::byte> buffers_; // buffer_count_ receive buffers of buffer_size_ bytes
    std::uint32_t buffer_size_ = 0;
    std::uint32_t buffer_count_ = 0;
    std::uint32_t returned_ = 0; // buffers given back since the last advance
};

struct CpuTimes {
    double user = 0;   // seconds
    double system = 0; // seconds, in the kernel on the process's behalf
    double total() const { return user + system; }
};

/// utime and stime of a process (/proc/PID/stat fields 14 and 15); negative if unreadable.
CpuTimes process_cpu_times(long pid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    // The command name (field 2) may hold spaces; fields after it start past the last ')'.
    std::size_t close = text.rfind(')');
    if (close == std::string::npos)
        return {-1, 0};
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15)
            stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return {static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

/// VmRSS of a process in KiB (0 if unknown).
long process_rss_kib(long pid) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(file, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::strtol(line.c_str() + 6, nullptr, 10);
    return 0;
}

/// Times a process went to sleep (voluntary context switches, summed over its threads): how
/// often a server found nothing to do and waited in the kernel to be woken. 0 if unknown.
std::uint64_t process_sleeps(long pid) {
    std::uint64_t sleeps = 0;
    std::error_code error;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
        std::ifstream file(task.path() / "status");
        std::string line;
        while (std::getline(file, line))
            if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
                sleeps += std::strtoull(line.c_str() + 24, nullptr, 10);
    }
    return sleeps;
}

double self_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void sleep_seconds(double s) {
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

template <class Int>
bool parse_int(std::string_view text, Int& out) {
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

bool parse_double(const char* text, double& out) {
    char* end = nullptr;
    out = std::strtod(text, &end);
    return end != text && *end == '\0' && out >= 0;
}

[[noreturn]] void usage(const char* problem) {
    std::fprintf(stderr,
                 "echo_load: %s\n"
                 "usage: echo_load --port P [--host 127.x.y.z] [--conns C] [--size S]\n"
                 "                 [--duration D] [--warmup W] [--threads T]\n"
                 "                 [--engine epoll|uring] [--rate MSGS_PER_S]\n"
                 "                 [--server-pid PID [--signal-server]] [--sliced] [--quiet]\n"
                 "  Ping-pongs S-byte messages on C connections for D seconds after W seconds of\n"
                 "  warm-up, verifying every byte. --signal-server sends the server SIGUSR1 at\n"
                 "  the start of the measured window and SIGUSR2 at its end. --engine uring\n"
                 "  (io_uring, Linux 6.1+: a multishot recv per connection, a send per\n"
                 "  message, one system call per batch) costs the load less CPU per message\n"
                 "  than epoll (the default), so that the server rather than the load sets\n"
                 "  the pace.\n"
                 "  --rate caps the messages per second over all connections (each still\n"
                 "  waits for its echo), so that servers can be compared at equal throughput.\n"
                 "  --sliced starts held and prints READY once connected; SIGUSR2 lets it run,\n"
                 "  SIGUSR1 holds it again: once the messages in flight are back it prints\n"
                 "  HELD. W and D count only the time it ran, and so do the rates it prints.\n",
                 problem);
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc)
                usage(("missing value after " + std::string(arg)).c_str());
            return argv[++i];
        };
        bool ok = true;
        if (arg == "--host")
            o.host = value();
        else if (arg == "--port")
            ok = parse_int(value(), o.port) && o.port != 0;
        else if (arg == "--conns")
            ok = parse_int(value(), o.connections) && o.connections > 0;
        else if (arg == "--size")
            ok = parse_int(value(), o.size) && o.size > 0;
        else if (arg == "--duration")
            ok = parse_double(value(), o.duration) && o.duration > 0;
        else if (arg == "--warmup")
            ok = parse_double(value(), o.warmup);
        else if (arg == "--threads")
            ok = parse_int(value(), o.threads) && o.threads > 0 && o.threads <= 64;
        else if (arg == "--server-pid")
            ok = parse_int(value(), o.server_pid) && o.server_pid > 0;
        else if (arg == "--signal-server")
            o.signal_server = true;
        else if (arg == "--quiet")
            o.quiet = true;
        else if (arg == "--sliced")
            o.sliced = true;
        else if (arg == "--rate")
            ok = parse_double(value(), o.rate);
        else if (arg == "--engine") {
            std::string_view engine = value();
            ok = engine == "epoll" || engine == "uring";
            o.uring = engine == "uring";
        } else
            usage(("unknown argument \"" + std::string(arg) + "\"").c_str());
        if (!ok)
            usage(("bad value \"" + std::string(argv[i]) + "\" for " + std::string(arg)).c_str());
    }
    if (o.port == 0)
        usage("--port is required");
    if (o.signal_server && o.server_pid == 0)
        usage("--signal-server needs --server-pid");
    return o;
}

/// Raises RLIMIT_NOFILE so that C connections fit (root may raise the hard limit too).
void raise_fd_limit(std::size_t connections) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    rlim_t want = static_cast<rlim_t>(connections) + 64;
    if (limit.rlim_cur >= want)
        return;
    limit.rlim_cur = want;
    if (limit.rlim_max < want)
        limit.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

} // namespace

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options.port);
    if (inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1) {
        std::fprintf(stderr, "echo_load: \"%s\" is not an IPv4 address (loopback only)\n",
                     options.host.c_str());
        return 2;
    }
    // Loopback only: this tool floods its target and must never point at another machine.
    if ((ntohl(address.sin_addr.s_addr) >> 24) != 127) {
        std::fprintf(stderr, "echo_load: refusing %s: only 127.0.0.0/8 addresses are allowed\n",
                     options.host.c_str());
        return 2;
    }
    raise_fd_limit(options.connections);
    std::signal(SIGPIPE, SIG_IGN);
    if (options.sliced)
        gate::install(); // before anything can send the signals, whose default ends the process

    // The pattern every message is a window of: random bytes, period 251 (prime).
    constexpr std::size_t period = 251;
    std::vector<std::byte> pattern(options.size + period);
    std::mt19937 random(12345);
    for (std::byte& b : pattern)
        b = static_cast<std::byte>(random() & 0xff);

    long rss_before = options.server_pid ? process_rss_kib(options.server_pid) : 0;

    std::size_t threads = std::min(options.threads, options.connections);
    std::vector<std::unique_ptr<Worker>> workers;
    std::size_t first = 0;
    for (std::size_t t = 0; t < threads; ++t) {
        std::size_t count = options.connections / threads + (t < options.connections % threads);
        auto id = static_cast<std::uint32_t>(first);
        if (options.uring)
            workers.push_back(
                std::make_unique<UringWorker>(options, address, pattern.data(), period, id, count));
        else
            workers.push_back(
                std::make_unique<EpollWorker>(options, address, pattern.data(), period, id, count));
        first += count;
    }
    std::vector<std::thread> running;
    auto connect_start = bench_clock::now();
    for (auto& w : workers)
        running.emplace_back([&w] { w->run(); });

    auto sum = [&](auto member) {
        std::uint64_t total = 0;
        for (auto& w : workers)
            total += (w->counters.*member).load(std::memory_order_relaxed);
        return total;
    };
    // Sleeps until the load has run for `seconds` since `from`, following --sliced's signals.
    auto run_for = [&](gate::Mark from, double seconds) {
        while (gate::running_seconds(from, gate::mark()) < seconds) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            if (options.sliced)
                gate::poll(sum(&WorkerCounters::in_flight));
        }
    };
    // Wait until every connection is up or failed (each worker connects its own, in order).
    for (;;) {
        std::uint64_t settled = sum(&WorkerCounters::connected) + sum(&WorkerCounters::errors);
        if (settled >= options.connections)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    double connect_seconds =
        std::chrono::duration<double>(bench_clock::now() - connect_start).count();
    std::uint64_t connected = sum(&WorkerCounters::connected);

    // The server's memory with every connection open and idle: wait until its RSS settles (it
    // may still be accepting), at most 3 s.
    long rss_idle = 0;
    if (options.server_pid) {
        sleep_seconds(0.3);
        rss_idle = process_rss_kib(options.server_pid);
        for (int stable = 0, tries = 0; stable < 2 && tries < 27; ++tries) {
            sleep_seconds(0.1);
            long now = process_rss_kib(options.server_pid);
            stable = now == rss_idle ? stable + 1 : 0;
            rss_idle = now;
        }
    }

    if (options.sliced) {
        std::printf("READY connected=%" PRIu64 "\n", connected);
        std::fflush(stdout);
    }
    phase.store(warming, std::memory_order_release);
    run_for(gate::mark(), options.warmup);

    // The measured window.
    std::uint64_t messages0 = sum(&WorkerCounters::messages);
    std::uint64_t bytes0 = sum(&WorkerCounters::bytes);
    CpuTimes server0 = options.server_pid ? process_cpu_times(options.server_pid) : CpuTimes{};
    std::uint64_t sleeps0 = options.server_pid ? process_sleeps(options.server_pid) : 0;
    double client0 = self_cpu_seconds();
    gate::Mark start = gate::mark();
    if (options.signal_server)
        ::kill(static_cast<pid_t>(options.server_pid), SIGUSR1);
    phase.store(measuring, std::memory_order_relaxed);
    run_for(start, options.duration);
    phase.store(draining, std::memory_order_relaxed);
    if (options.signal_server)
        ::kill(static_cast<pid_t>(options.server_pid), SIGUSR2);
    gate::Mark end = gate::mark();
    double elapsed = gate::running_seconds(start, end); // all of `wall` unless --sliced
    double wall = static_cast<double>(end.at - start.at) / 1e9;
    std::uint64_t messages = sum(&WorkerCounters::messages) - messages0;
    std::uint64_t bytes = sum(&WorkerCounters::bytes) - bytes0;
    CpuTimes server1 = options.server_pid ? process_cpu_times(options.server_pid) : CpuTimes{};
    std::uint64_t sleeps1 = options.server_pid ? process_sleeps(options.server_pid) : 0;
    double server_cpu = server1.total() - server0.total();
    double server_user = server1.user - server0.user;
    auto per_message = [messages](double total) {
        return messages ? total / static_cast<double>(messages) : 0.0;
    };
    const double server_us_per_msg = per_message(1e6 * server_cpu);
    const double server_user_us_per_msg = per_message(1e6 * server_user);
    // A thread that ended within the window takes its count along: never report less than 0.
    const double sleeps_per_kmsg =
        sleeps1 > sleeps0 ? per_message(1e3 * static_cast<double>(sleeps1 - sleeps0)) : 0.0;
    double client_cpu = self_cpu_seconds() - client0;

    // Let the messages in flight finish (they are verified too), at most 5 s: a worker leaves
    // its loop once none of its connections waits for an echo.
    auto drain_deadline = bench_clock::now() + std::chrono::seconds(5);
    while (workers_done.load() < threads && bench_clock::now() < drain_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    bool drained = workers_done.load() == threads;
    long rss_after = options.server_pid ? process_rss_kib(options.server_pid) : 0;
    phase.store(stopped, std::memory_order_release);
    for (auto& t : running)
        t.join();
    for (auto& w : workers)
        w->close_all();

    Histogram latencies;
    for (auto& w : workers)
        latencies.merge(w->latencies);
    std::uint64_t errors = sum(&WorkerCounters::errors);
    std::uint64_t mismatches = sum(&WorkerCounters::mismatches);
    if (!drained)
        ++errors; // an echo never came back

    double rate = static_cast<double>(messages) / elapsed;
    double megabytes = static_cast<double>(bytes) / elapsed / 1e6;
    double p50 = latencies.quantile(0.50) / 1e3, p99 = latencies.quantile(0.99) / 1e3,
           p999 = latencies.quantile(0.999) / 1e3;
    double client_percent = 100 * client_cpu / elapsed;

    if (!options.quiet) {
        std::printf("echo_load: %s:%u, %" PRIu64 "/%zu connections (%.2f s to connect), %zu-byte "
                    "messages, %zu thread(s), %.2f s measured after %.2f s warm-up\n",
                    options.host.c_str(), options.port, connected, options.connections,
                    connect_seconds, options.size, threads, elapsed, options.warmup);
        if (options.sliced)
            std::printf("  --sliced: it ran %.2f s of the window's %.2f s\n", elapsed, wall);
        std::printf("  %.0f msgs/s, %.2f MB/s (each way)", rate, megabytes);
        if (options.rate > 0)
            std::printf(", --rate %.0f", options.rate);
        std::printf("\n");
        std::printf("  latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n", p50, p99, p999);
        std::printf("  errors %" PRIu64 ", mismatches %" PRIu64 "\n", errors, mismatches);
        std::printf("  client CPU %.1f%%\n", client_percent);
        if (options.server_pid) {
            std::printf("  server CPU %.1f%%, %.3f us/message (%.3f of them in user space)\n",
                        100 * server_cpu / elapsed, server_us_per_msg, server_user_us_per_msg);
            std::printf("  server slept %.1f times per 1,000 messages (voluntary context "
                        "switches)\n",
                        sleeps_per_kmsg);
            std::printf("  server RSS %ld KiB before connecting, %ld KiB idle with the "
                        "connections, %ld KiB after the run\n",
                        rss_before, rss_idle, rss_after);
        }
    }
    std::printf("RESULT conns=%zu connected=%" PRIu64 " size=%zu threads=%zu seconds=%.3f "
                "wall_seconds=%.3f "
                "msgs=%" PRIu64 " msgs_per_s=%.1f mb_per_s=%.3f p50_us=%.2f p99_us=%.2f "
                "p999_us=%.2f errors=%" PRIu64 " mismatches=%" PRIu64
                " client_cpu_pct=%.1f offered_rate=%.0f",
                options.connections, connected, options.size, threads, elapsed, wall, messages,
                rate, megabytes, p50, p99, p999, errors, mismatches, client_percent, options.rate);
    if (options.server_pid)
        std::printf(" server_cpu_pct=%.1f server_us_per_msg=%.4f server_user_us_per_msg=%.4f "
                    "server_sleeps_per_kmsg=%.2f rss_before_kib=%ld rss_idle_kib=%ld "
                    "rss_after_kib=%ld",
                    100 * server_cpu / elapsed, server_us_per_msg, server_user_us_per_msg,
                    sleeps_per_kmsg, rss_before, rss_idle, rss_after);
    std::printf("\n");
    return errors == 0 && mismatches == 0 ? 0 : 1;
}
