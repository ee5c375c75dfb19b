// echo_demo: the echo server and 100 concurrent clients in one process and one thread, on an
// ephemeral port of 127.0.0.1. Prints a short table; exit code 0 only if every echo matched.
#include "echo_common.hpp"

#include <chrono>

constexpr int clients = 100;
constexpr int rounds = 5;

ringlet::Task<int> demo() {
    ringlet::Server server =
        ringlet::start_server(echo::echo_back, ringlet::Address::parse("127.0.0.1:0"));

    auto start = std::chrono::steady_clock::now();
    echo::Totals totals =
        co_await echo::run_clients(server.local_address(), clients, rounds, /*quiet=*/true);
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    server.close();
    co_await server.wait_closed(); // the clients have closed their ends: handlers finish

    const std::size_t expected = static_cast<std::size_t>(clients) * rounds;
    const bool all_matched = totals.messages == expected && totals.failures == 0;
    fmt::print("echo demo on {}\n", server.local_address());
    fmt::print("  connections     {:>10}\n", server.connections_accepted());
    fmt::print("  messages        {:>10}\n", totals.messages);
    fmt::print("  bytes verified  {:>10}\n", totals.bytes);
    fmt::print("  elapsed         {:>7.1f} ms\n", elapsed.count() * 1000);
    fmt::print("  msgs/s          {:>10.0f}\n", totals.messages / elapsed.count());
    fmt::print("{}\n", all_matched ? "all echoes matched"
                                   : fmt::format("FAILED: {} of {} echoes matched, {} failures",
                                                 totals.messages, expected, totals.failures));
    co_return all_matched ? 0 : 1;
}

int main() {
    return ringlet::run(demo());
}
