// echo_client [--clients N] [--port P] [--quiet]: N concurrent clients (default 100), one task
// each, against an echo server on 127.0.0.1:P (default 8001). Each sends "hello <id>" five
// times, checks every echo and prints it (--quiet: only the summary). Exit code 0 only if every
// echo matched.
#include "echo_common.hpp"

#include <charconv>
#include <cstdint>
#include <string_view>

constexpr int rounds = 5;

template <class Int>
bool parse_number(std::string_view text, Int& out) {
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

int main(int argc, char** argv) {
    int clients = 100;
    std::uint16_t port = 8001;
    bool quiet = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        bool ok = true;
        if (arg == "--quiet")
            quiet = true;
        else if (arg == "--clients" && i + 1 < argc)
            ok = parse_number(argv[++i], clients) && clients > 0;
        else if (arg == "--port" && i + 1 < argc)
            ok = parse_number(argv[++i], port);
        else
            ok = false;
        if (!ok) {
            fmt::print(stderr, "usage: echo_client [--clients N] [--port P] [--quiet]\n");
            return 2;
        }
    }

    auto server = ringlet::Address::ipv4("127.0.0.1", port);
    echo::Totals totals = ringlet::run(echo::run_clients(server, clients, rounds, quiet));
    std::size_t expected = static_cast<std::size_t>(clients) * rounds;
    bool all_matched = totals.messages == expected && totals.failures == 0;
    fmt::print("{} of {} clients connected, {} of {} echoes matched ({} bytes): {}\n",
               totals.connections, clients, totals.messages, expected, totals.bytes,
               all_matched ? "OK" : "FAILED");
    return all_matched ? 0 : 1;
}
