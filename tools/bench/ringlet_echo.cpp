// ringlet_echo: ringlet's server in the echo benchmark (issue 6). Single-threaded, one task per
// connection over the public TcpListener/TcpStream API: recv_buffer() (a multishot recv into
// the loop's provided-buffer pool, so an idle connection parks no buffer), then send_all of
// what arrived, until the peer closes.
// Allocation count: counting_new.hpp replaces global operator new by a counting one, on from
// the start of main. SIGUSR1 marks the start of a measured window, SIGUSR2 its end and prints
// `ALLOCS window allocations=N recvs=M ...` on stdout (echo_load --signal-server sends both);
// SIGINT/SIGTERM print the totals and exit.
// Usage: ringlet_echo PORT [--buffer BYTES]   (listens on 127.0.0.1:PORT; BYTES is the size of
// the pool's buffers, default 16384)
#include "counting_new.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ringlet/ringlet.hpp>
#include <span>
#include <string_view>
#include <sys/signalfd.h>
#include <system_error>

namespace {

using counting_new::allocations;
std::uint64_t recvs = 0; // the server is single-threaded: a plain counter

std::size_t buffer_size = 16384;

/// One connection: echoes whatever arrives until the peer closes its end.
ringlet::Task<> echo(ringlet::TcpStream stream) {
    try {
        for (;;) {
            ringlet::RecvBuffer data = co_await stream.recv_buffer();
            ++recvs;
            if (data.empty())
                break;
            co_await stream.send_all(data.bytes());
        }
    } catch (const std::system_error&) {
        // The peer reset the connection: nothing to report in a benchmark server.
    }
}

ringlet::Task<> accept_forever(ringlet::TcpListener& listener) {
    for (;;) {
        ringlet::TcpStream stream = co_await listener.accept();
        ringlet::spawn(echo(std::move(stream)));
    }
}

void print_loop_stats(const char* what, const ringlet::LoopStats& s0, const ringlet::LoopStats& s1,
                      std::uint64_t allocs, std::uint64_t received) {
    std::printf("ALLOCS %s allocations=%llu recvs=%llu loop_iterations=%llu completions=%llu "
                "kernel_entries=%llu allocs_per_recv=%.6f recv_buffers=%zu\n",
                what, static_cast<unsigned long long>(allocs),
                static_cast<unsigned long long>(received),
                static_cast<unsigned long long>(s1.iterations - s0.iterations),
                static_cast<unsigned long long>(s1.completions - s0.completions),
                static_cast<unsigned long long>(s1.kernel_entries - s0.kernel_entries),
                received ? static_cast<double>(allocs) / static_cast<double>(received) : 0.0,
                s1.recv_buffers);
    std::fflush(stdout);
}

/// SIGUSR1 starts a window, SIGUSR2 reports it, SIGINT/SIGTERM report the totals and end.
/// It reads a signalfd of its own through the ring (ringlet::wait_signal allocates its frame and
/// the signal names at each call), so that the watcher adds no allocation to a window.
ringlet::Task<> watch_signals(const sigset_t& watched) {
    ringlet::EventLoop& loop = ringlet::EventLoop::current();
    int fd = ::signalfd(-1, &watched, SFD_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "signalfd");
    signalfd_siginfo info{};
    std::uint64_t allocations0 = 0, recvs0 = 0;
    ringlet::LoopStats stats0 = loop.stats();
    for (;;) {
        std::int32_t n =
            co_await ringlet::detail::read_some(fd, std::as_writable_bytes(std::span(&info, 1)));
        if (n != static_cast<std::int32_t>(sizeof info))
            continue; // EINTR and the like: read again
        std::uint64_t allocs = allocations, received = recvs;
        ringlet::LoopStats stats = loop.stats();
        if (info.ssi_signo == SIGUSR1) {
            allocations0 = allocs;
            recvs0 = received;
            stats0 = stats;
        } else if (info.ssi_signo == SIGUSR2) {
            print_loop_stats("window", stats0, stats, allocs - allocations0, received - recvs0);
        } else {
            print_loop_stats("total", ringlet::LoopStats{}, stats, allocs, received);
            std::_Exit(0);
        }
    }
}

ringlet::Task<> serve(std::uint16_t port, const sigset_t& watched) {
    ringlet::ListenOptions options;
    options.backlog = 4096;
    ringlet::TcpListener listener =
        ringlet::TcpListener::bind(ringlet::Address::ipv4("127.0.0.1", port), options);
    std::printf("ringlet_echo listening on %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    ringlet::JoinHandle<> watcher = ringlet::spawn(watch_signals(watched));
    co_await accept_forever(listener);
}

template <class Int>
bool parse_number(std::string_view text, Int& out) {
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

} // namespace

int main(int argc, char** argv) {
    counting_new::counting = true;
    std::uint16_t port = 0;
    bool ok = argc >= 2 && parse_number(argv[1], port) && port != 0;
    if (ok && argc == 4 && std::string_view(argv[2]) == "--buffer")
        ok = parse_number(argv[3], buffer_size) && buffer_size > 0 && buffer_size <= (1u << 30);
    else if (argc != 2)
        ok = false;
    if (!ok) {
        std::fprintf(stderr, "usage: ringlet_echo PORT [--buffer BYTES]\n");
        return 2;
    }
    // Block the signals before the loop starts so none arrives before wait_signal() is armed.
    sigset_t watched;
    sigemptyset(&watched);
    for (int s : {SIGUSR1, SIGUSR2, SIGINT, SIGTERM})
        sigaddset(&watched, s);
    pthread_sigmask(SIG_BLOCK, &watched, nullptr);
    try {
        ringlet::LoopOptions options;
        options.recv_buffer_size = static_cast<std::uint32_t>(buffer_size);
        ringlet::run(serve(port, watched), options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringlet_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
