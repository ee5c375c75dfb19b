// echo_server [port]: a TCP echo server, one task per connection (SEED_DEMOS.md section 5).
// Listens on 127.0.0.1:<port> (default 8001; 0 picks a free port, printed at start). On SIGINT
// or SIGTERM it closes the listener, gives open connections up to one second to finish, cancels
// the rest, and prints how many connections it served.
#include "echo_common.hpp"

#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

using namespace std::chrono_literals;

ringlet::Task<int> serve(std::uint16_t port) {
    ringlet::Server server =
        ringlet::start_server(echo::echo_back, ringlet::Address::ipv4("127.0.0.1", port));

    // Block SIGINT/SIGTERM before announcing the port, so a signal sent as soon as the port is
    // known is never missed: the waiting task blocks them when it starts.
    auto stop = ringlet::spawn(ringlet::wait_signal({SIGINT, SIGTERM}), "wait_signal");
    co_await ringlet::yield_now();
    fmt::print("echo server listening on {}\n", server.local_address());
    std::fflush(stdout);

    int signal = co_await stop;
    fmt::print("SIG{} received: closing the listener\n", sigabbrev_np(signal));
    server.close();
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
    fmt::print("served {} connections\n", server.connections_accepted());
    co_return 0;
}

int main(int argc, char** argv) {
    std::uint16_t port = 8001;
    if (argc > 1) {
        std::string_view arg = argv[1];
        auto [end, error] = std::from_chars(arg.data(), arg.data() + arg.size(), port);
        if (error != std::errc() || end != arg.data() + arg.size()) {
            fmt::print(stderr, "usage: echo_server [port]   (bad port \"{}\")\n", arg);
            return 2;
        }
    }
    try {
        return ringlet::run(serve(port));
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo_server: {}\n", e.what());
        return 1;
    }
}
