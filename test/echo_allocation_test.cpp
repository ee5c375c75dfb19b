// Issue 6's "no allocation on the steady-state echo path", proved with a counting global
// operator new: once warm, echoing messages over TCP (the server through recv_buffer() and
// send_all(), the clients through recv() and send_all()) calls operator new for nothing, in
// every build (send_all() is an awaiter, not a coroutine, so AddressSanitizer builds, where
// every coroutine frame comes from operator new, allocate nothing here either).
#include "../tools/bench/counting_new.hpp"
#include "support.hpp"

#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

namespace {

using counting_new::allocations;
using counting_new::counting;
using namespace ringlet::test;
using ringlet::Address;
using ringlet::RecvBuffer;
using ringlet::Task;
using ringlet::TcpListener;
using ringlet::TcpStream;

constexpr std::size_t message_size = 64;
constexpr std::size_t clients = 8;

Task<> echo(TcpStream stream) {
    for (;;) {
        RecvBuffer data = co_await stream.recv_buffer();
        if (data.empty())
            break;
        co_await stream.send_all(data.bytes());
    }
}

Task<> serve(TcpListener& listener) {
    for (std::size_t i = 0; i < clients; ++i)
        ringlet::spawn(echo(co_await listener.accept()));
}

/// Sends `count` messages one at a time and checks each echo; counts the bytes verified.
Task<> client(Address server, std::size_t warm_up, std::size_t count, std::size_t& verified,
              std::size_t& warm) {
    TcpStream stream = co_await TcpStream::connect(server);
    std::array<std::byte, message_size> out{}, in{};
    for (std::size_t i = 0; i < warm_up + count; ++i) {
        for (std::size_t b = 0; b < message_size; ++b)
            out[b] = static_cast<std::byte>(i + b);
        co_await stream.send_all(out);
        std::size_t got = 0;
        while (got < message_size) {
            std::size_t n = co_await stream.recv(std::span(in).subspan(got));
            if (n == 0)
                co_return;
            got += n;
        }
        if (in == out)
            verified += message_size;
        if (i + 1 == warm_up)
            ++warm; // this client is warm; the last one to get here starts the count
        if (warm == clients && i + 1 == warm_up)
            counting = true;
    }
}

} // namespace

TEST_CASE("the steady-state echo path allocates nothing", "[net][recv_buffer]") {
    constexpr std::size_t warm_up = 200;
    constexpr std::size_t count = 1000;
    std::size_t verified = 0, warm = 0;
    allocations = 0;
    run_real([&]() -> Task<> {
        TcpListener listener = TcpListener::bind(Address::parse("127.0.0.1:0"));
        auto server = ringlet::spawn(serve(listener));
        std::vector<Task<>> tasks;
        for (std::size_t i = 0; i < clients; ++i)
            tasks.push_back(client(listener.local_address(), warm_up, count, verified, warm));
        co_await ringlet::wait_for(ringlet::gather(std::move(tasks)), 60s);
        counting = false;
        co_await server;
    }());
    counting = false;
    CHECK(verified == clients * (warm_up + count) * message_size);
    CHECK(allocations == 0);
}
