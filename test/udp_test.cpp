// Tests of UdpSocket on loopback (port 0): bind, send_to/recv_from with the sender's address,
// connected send/recv, truncation to the buffer, ICMP port-unreachable as ECONNREFUSED naming
// the peer, close with a receive in flight, cancellation, and bad arguments.
#include "support.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <system_error>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::Task;
using ringlet::UdpSocket;

const Address any_loopback = Address::parse("127.0.0.1:0");

std::string text(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

} // namespace

TEST_CASE("UdpSocket bound to port 0 reports the real port", "[net][udp]") {
    UdpSocket socket = UdpSocket::bind(any_loopback);
    CHECK(socket.is_open());
    CHECK(socket.local_address().port() != 0);
    CHECK(socket.local_address().host() == "127.0.0.1");
    CHECK(socket.peer_address().family() == ringlet::AddressFamily::unspecified);
    socket.close();
    CHECK_FALSE(socket.is_open());
    CHECK_THROWS_AS(UdpSocket::bind(Address::unix_abstract("udp")), std::invalid_argument);
    CHECK_THROWS_AS(UdpSocket::connect(Address()), std::invalid_argument);
}

TEST_CASE("UdpSocket send_to and recv_from carry datagrams and the sender's address",
          "[net][udp]") {
    run_real([]() -> Task<> {
        UdpSocket a = UdpSocket::bind(any_loopback);
        UdpSocket b = UdpSocket::bind(any_loopback);
        std::size_t sent = co_await a.send_to(std::string_view("first"), b.local_address());
        CHECK(sent == 5);
        sent = co_await a.send_to(std::as_bytes(std::span("second", 6)), b.local_address());
        CHECK(sent == 6);

        std::array<std::byte, 64> buffer;
        auto [n1, from1] = co_await b.recv_from(buffer);
        CHECK(text(std::span(buffer).first(n1)) == "first");
        CHECK(from1 == a.local_address());
        auto [n2, from2] = co_await b.recv_from(buffer);
        CHECK(text(std::span(buffer).first(n2)) == "second");
        CHECK(from2 == a.local_address());

        // The receiver answers to the address it got.
        co_await b.send_to(std::string_view("reply"), from1);
        auto [n3, from3] = co_await a.recv_from(buffer);
        CHECK(text(std::span(buffer).first(n3)) == "reply");
        CHECK(from3 == b.local_address());
    }());
}

TEST_CASE("UdpSocket truncates a datagram longer than the buffer", "[net][udp]") {
    run_real([]() -> Task<> {
        UdpSocket a = UdpSocket::bind(any_loopback);
        UdpSocket b = UdpSocket::bind(any_loopback);
        co_await a.send_to(std::string_view("0123456789"), b.local_address());
        co_await a.send_to(std::string_view("next"), b.local_address());
        std::array<std::byte, 4> small;
        auto [n, from] = co_await b.recv_from(small);
        CHECK(n == 4);
        CHECK(text(small) == "0123");
        // The rest of the datagram is gone; the next one is whole.
        std::array<std::byte, 16> buffer;
        auto [m, from2] = co_await b.recv_from(buffer);
        CHECK(text(std::span(buffer).first(m)) == "next");
    }());
}

TEST_CASE("a connected UdpSocket sends and receives with send and recv", "[net][udp]") {
    run_real([]() -> Task<> {
        UdpSocket server = UdpSocket::bind(any_loopback);
        UdpSocket client = UdpSocket::connect(server.local_address());
        CHECK(client.peer_address() == server.local_address());
        CHECK(client.local_address().port() != 0);

        std::size_t sent = co_await client.send(std::string_view("hello"));
        CHECK(sent == 5);
        std::array<std::byte, 32> buffer;
        auto [n, from] = co_await server.recv_from(buffer);
        CHECK(text(std::span(buffer).first(n)) == "hello");
        CHECK(from == client.local_address());

        co_await server.send_to(std::string_view("world"), from);
        std::size_t got = co_await client.recv(buffer);
        CHECK(text(std::span(buffer).first(got)) == "world");

        // connect() with an explicit local address binds it first.
        UdpSocket fixed = UdpSocket::connect(server.local_address(), any_loopback);
        CHECK(fixed.local_address().port() != 0);
        co_await fixed.send(std::string_view("x"));
        auto [k, from_fixed] = co_await server.recv_from(buffer);
        CHECK(k == 1);
        CHECK(from_fixed == fixed.local_address());
    }());
}

TEST_CASE("recv on a connected UdpSocket reports ECONNREFUSED naming the peer", "[net][udp]") {
    run_real([]() -> Task<> {
        // A port nobody listens on: bind one, note it, close it.
        Address closed_port;
        {
            UdpSocket gone = UdpSocket::bind(any_loopback);
            closed_port = gone.local_address();
        }
        UdpSocket client = UdpSocket::connect(closed_port);
        co_await client.send(std::string_view("anyone?"));
        std::array<std::byte, 16> buffer;
        std::string what;
        try {
            // The ICMP port unreachable arrives as an error on the next receive.
            (void)co_await ringlet::wait_for(client.recv(buffer), 5s);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            what = e.what();
        }
        CHECK(what.starts_with("recv from " + closed_port.to_string() + ": "));
    }());
}

TEST_CASE("closing a UdpSocket completes its receive with operation_canceled", "[net][udp]") {
    run_real([]() -> Task<> {
        UdpSocket socket = UdpSocket::bind(any_loopback);
        std::array<std::byte, 16> buffer;
        auto reader = [](UdpSocket& s, std::span<std::byte> b) -> Task<std::string> {
            try {
                (void)co_await s.recv_from(b);
            } catch (const std::system_error& e) {
                CHECK(e.code() == std::errc::operation_canceled);
                co_return e.what();
            }
            co_return "received";
        };
        auto pending = ringlet::spawn(reader(socket, buffer));
        co_await ringlet::sleep(5ms);
        std::string local = socket.local_address().to_string();
        socket.close();
        std::string what = co_await pending;
        CHECK(what.starts_with("recv_from on " + local + ": "));
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
    }());
}

TEST_CASE("a cancelled recv_from raises CancelledError after the kernel let go", "[net][udp]") {
    run_real([]() -> Task<> {
        UdpSocket socket = UdpSocket::bind(any_loopback);
        std::array<std::byte, 16> buffer;
        auto reader = [](UdpSocket& s, std::span<std::byte> b) -> Task<> {
            (void)co_await s.recv_from(b);
        };
        auto pending = ringlet::spawn(reader(socket, buffer));
        co_await ringlet::sleep(5ms);
        pending.cancel();
        CHECK_THROWS_AS(co_await pending, ringlet::CancelledError);
        CHECK(ringlet::EventLoop::current().stats().io_in_flight == 0);
        // The socket still works.
        UdpSocket sender = UdpSocket::bind(any_loopback);
        co_await sender.send_to(std::string_view("ok"), socket.local_address());
        auto [n, from] = co_await socket.recv_from(buffer);
        CHECK(n == 2);
    }());
}

TEST_CASE("UdpSocket works over IPv6 loopback", "[net][udp]") {
    UdpSocket probe;
    try {
        probe = UdpSocket::bind(Address::parse("[::1]:0"));
    } catch (const std::system_error& e) {
        WARN("IPv6 loopback unavailable, skipping: " << e.what());
        return;
    }
    run_real([](UdpSocket& a) -> Task<> {
        UdpSocket b = UdpSocket::bind(Address::parse("[::1]:0"));
        co_await b.send_to(std::string_view("six"), a.local_address());
        std::array<std::byte, 8> buffer;
        auto [n, from] = co_await a.recv_from(buffer);
        CHECK(text(std::span(buffer).first(n)) == "six");
        CHECK(from == b.local_address());
        CHECK(from.to_string().starts_with("[::1]:"));
    }(probe));
}
