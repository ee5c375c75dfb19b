// The two halves of the echo samples, shared by echo_server, echo_client and echo_demo: the
// server's per-connection handler, and N concurrent clients that each send "hello <id>" a few
// times over their own connection and check every echo. One thread, one task per connection.
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <fmt/core.h>
#include <ringlet/ringlet.hpp>
#include <string>
#include <vector>

namespace echo {

/// Server side: sends back whatever arrives until the peer closes its end.
inline ringlet::Task<> echo_back(ringlet::TcpStreamReader& reader, ringlet::TcpStream& stream) {
    for (;;) {
        std::vector<std::byte> data = co_await reader.read_some();
        if (data.empty())
            co_return; // the peer closed its end
        co_await stream.send_all(data);
    }
}

struct Totals {
    std::size_t connections = 0; ///< clients that connected
    std::size_t messages = 0;    ///< echoes that matched what was sent
    std::size_t bytes = 0;       ///< bytes of the matching echoes
    std::size_t failures = 0;    ///< clients that failed or received a wrong echo
};

/// Client side: one connection, `rounds` times "hello <id>" and its echo.
inline ringlet::Task<> run_client(ringlet::Address server, int id, int rounds, bool quiet,
                                  Totals& totals) {
    try {
        ringlet::Connection conn = co_await ringlet::open_connection(server);
        ++totals.connections;
        const std::string message = fmt::format("hello {}\n", id);
        for (int round = 0; round < rounds; ++round) {
            co_await conn.stream.send_all(message);
            std::string echoed = co_await conn.reader.read_line();
            if (echoed != message) {
                ++totals.failures;
                fmt::print(stderr, "client {}: sent \"hello {}\", got {} bytes back: \"{}\"\n", id,
                           id, echoed.size(), echoed);
                co_return;
            }
            ++totals.messages;
            totals.bytes += echoed.size();
            if (!quiet)
                fmt::print("client {:3}: {}", id, echoed);
        }
    } catch (const std::exception& e) {
        ++totals.failures;
        fmt::print(stderr, "client {}: {}\n", id, e.what());
    }
}

/// Runs `clients` clients concurrently (one task each) and adds up what they saw.
inline ringlet::Task<Totals> run_clients(ringlet::Address server, int clients, int rounds,
                                         bool quiet) {
    Totals totals;
    std::vector<ringlet::Task<>> tasks;
    for (int id = 1; id <= clients; ++id)
        tasks.push_back(run_client(server, id, rounds, quiet, totals));
    co_await ringlet::gather(std::move(tasks));
    std::fflush(stdout);
    co_return totals;
}

} // namespace echo
