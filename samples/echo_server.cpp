// echo_server [port] [--threads N]: a TCP echo server, one task per connection (SEED_DEMOS.md
// section 5), on N threads with one event loop each (default 1): every loop accepts on its own
// SO_REUSEPORT listener of 127.0.0.1:<port> (default 8001; 0 picks a free port, printed at
// start). On SIGINT or SIGTERM every loop closes its listener, gives its open connections up to
// one second to finish and cancels the rest; then the server prints how many connections all
// loops served.
// Signals: they are blocked on every thread before the loops start (the threads inherit the
// mask), so only loop 0's wait_signal() sees them; it then stops the other loops through the
// LoopGroup (a call_soon_threadsafe to each).
#include "echo_common.hpp"

#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

/// What one loop did, read by main() once every loop has finished.
struct LoopReport {
    std::uint64_t served = 0;
};

/// Loop 0: waits for SIGINT/SIGTERM, then stops every loop (this one included).
ringlet::Task<> stop_on_signal(ringlet::LoopGroup& group) {
    std::vector<int> signals{SIGINT, SIGTERM}; // named: g++ 12 rejects the braced list here
    int signal = co_await ringlet::wait_signal(signals);
    fmt::print("SIG{} received: closing the listener\n", sigabbrev_np(signal));
    std::fflush(stdout);
    group.stop();
}

/// One loop: serves its listener until the group stops it, then shuts down gracefully.
ringlet::Task<> serve(ringlet::TcpListener listener, LoopReport& report, ringlet::LoopGroup& group,
                      bool watch_signals) {
    ringlet::Server server = ringlet::start_server(echo::echo_back, std::move(listener));
    ringlet::JoinHandle<> watcher;
    if (watch_signals)
        watcher = ringlet::spawn(stop_on_signal(group), "wait_signal");
    try {
        co_await server.serve_forever(); // until group.stop() cancels this task
    } catch (const ringlet::CancelledError&) {
        // Stopping: serve_forever() closed the listener; finish gracefully below.
    }
    bool all_finished = true;
    try {
        co_await ringlet::wait_for(server.wait_closed(), 1s);
    } catch (const ringlet::TimeoutError&) {
        all_finished = false;
    }
    if (!all_finished) {
        fmt::print("{} connection(s) still open after 1 s: cancelling them\n",
                   server.active_connections());
        server.close_clients();
        co_await server.wait_closed();
    }
    report.served = server.connections_accepted();
}

template <class Int>
bool parse_number(std::string_view text, Int& out) {
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

int main(int argc, char** argv) {
    std::uint16_t port = 8001;
    std::size_t threads = 1;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        bool ok = arg == "--threads" && i + 1 < argc
                      ? parse_number(argv[++i], threads) && threads > 0 && threads <= 256
                      : parse_number(arg, port);
        if (!ok) {
            fmt::print(stderr, "usage: echo_server [port] [--threads N]   (bad argument \"{}\")\n",
                       argv[i]);
            return 2;
        }
    }
    try {
        // Block the signals before any thread starts, so a signal sent as soon as the port is
        // printed is never missed: it stays pending until loop 0's wait_signal() takes it.
        sigset_t stop_signals;
        sigemptyset(&stop_signals);
        sigaddset(&stop_signals, SIGINT);
        sigaddset(&stop_signals, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

        // One listener per loop on the same port; the first may pick the port (0).
        ringlet::ListenOptions options;
        options.reuse_port = threads > 1;
        std::vector<ringlet::TcpListener> listeners;
        for (std::size_t i = 0; i < threads; ++i) {
            std::uint16_t bind_port = i == 0 ? port : listeners[0].local_address().port();
            listeners.push_back(ringlet::TcpListener::bind(
                ringlet::Address::ipv4("127.0.0.1", bind_port), options));
        }
        if (threads == 1)
            fmt::print("echo server listening on {}\n", listeners[0].local_address());
        else
            fmt::print("echo server listening on {} ({} threads)\n", listeners[0].local_address(),
                       threads);
        std::fflush(stdout);

        std::vector<LoopReport> reports(threads);
        ringlet::run_on_threads(threads, [&](std::size_t index, ringlet::LoopGroup& group) {
            return serve(std::move(listeners[index]), reports[index], group, index == 0);
        });

        std::uint64_t served = 0;
        for (const LoopReport& r : reports)
            served += r.served;
        fmt::print("served {} connections", served);
        if (threads > 1) {
            const char* separator = " (";
            for (std::size_t i = 0; i < threads; ++i, separator = ", ")
                fmt::print("{}loop {}: {}", separator, i, reports[i].served);
            fmt::print(")");
        }
        fmt::print("\n");
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo_server: {}\n", e.what());
        return 1;
    }
}
