// Tests of the echo samples as programs: echo_demo's exit code and table; echo_server driven by
// echo_client on a free port, then stopped with SIGTERM; echo_server's one-second grace period
// for a connection that stays open; echo_client's exit code when nothing listens. The binaries
// come from RINGLET_SAMPLES_DIR (set by test/meson.build), else ../samples next to this binary.
#include "sample_program.hpp"
#include "support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using ringlet::test::Program;

/// A port of 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
    ::close(fd);
    return ntohs(address.sin_port);
}

/// A blocking client socket connected to 127.0.0.1:`port`.
int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        throw std::system_error(errno, std::generic_category(), "connect");
    return fd;
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("echo_demo verifies every echo of 100 clients and prints its table", "[samples]") {
    Program demo("echo_demo");
    std::string output = demo.read_rest();
    int code = demo.wait();
    INFO(output);
    CHECK(code == 0);
    CHECK_THAT(output, Catch::StartsWith("echo demo on 127.0.0.1:"));
    CHECK_THAT(output, Catch::Contains("  connections            100\n"));
    CHECK_THAT(output, Catch::Contains("  messages               500\n"));
    // "hello N\n" for N = 1..100, five times: 5 * (9 * 8 + 90 * 9 + 10) bytes.
    CHECK_THAT(output, Catch::Contains("  bytes verified        4460\n"));
    CHECK_THAT(output, Catch::Contains(" ms\n") && Catch::Contains("  msgs/s  "));
    CHECK_THAT(output, Catch::EndsWith("all echoes matched\n"));
}

TEST_CASE("echo_server serves echo_client on a given port and stops on SIGTERM printing the "
          "number of connections served",
          "[samples]") {
    const std::uint16_t port = free_port();
    Program server("echo_server", {std::to_string(port)});
    CHECK(server.read_line() == "echo server listening on 127.0.0.1:" + std::to_string(port));

    Program quiet("echo_client", {"--port", std::to_string(port), "--quiet", "--clients", "30"});
    std::string summary = quiet.read_rest();
    CHECK(quiet.wait() == 0);
    CHECK(summary == "30 of 30 clients connected, 150 of 150 echoes matched (1305 bytes): OK\n");

    Program chatty("echo_client", {"--port", std::to_string(port), "--clients", "3"});
    std::string echoes = chatty.read_rest();
    CHECK(chatty.wait() == 0);
    CHECK(count(echoes, "client   2: hello 2\n") == 5);
    CHECK(count(echoes, ": hello ") == 15);

    server.signal(SIGTERM);
    std::string rest = server.read_rest();
    CHECK(server.wait() == 0);
    CHECK(rest == "SIGTERM received: closing the listener\nserved 33 connections\n");
}

TEST_CASE("echo_server --threads 2 serves echo_client from two loops on one port and sums their "
          "connections after SIGINT",
          "[samples][multi_loop]") {
    const std::uint16_t port = free_port();
    Program server("echo_server", {std::to_string(port), "--threads", "2"});
    CHECK(server.read_line() ==
          "echo server listening on 127.0.0.1:" + std::to_string(port) + " (2 threads)");

    Program client("echo_client", {"--port", std::to_string(port), "--quiet", "--clients", "40"});
    std::string summary = client.read_rest();
    CHECK(client.wait() == 0);
    // "hello N\n" for N = 1..40, five times: 5 * (9 * 8 + 31 * 9) bytes.
    CHECK(summary == "40 of 40 clients connected, 200 of 200 echoes matched (1755 bytes): OK\n");

    server.signal(SIGINT);
    std::string rest = server.read_rest();
    CHECK(server.wait() == 0);
    INFO(rest);
    const std::string head =
        "SIGINT received: closing the listener\nserved 40 connections (loop 0: ";
    REQUIRE_THAT(rest, Catch::StartsWith(head) && Catch::EndsWith(")\n"));
    // "(loop 0: A, loop 1: B)": both loops served some (all 40 on one socket: chance 2^-39).
    std::size_t a_end = rest.find(", loop 1: ", head.size());
    REQUIRE(a_end != std::string::npos);
    int a = std::stoi(rest.substr(head.size(), a_end - head.size()));
    int b = std::stoi(rest.substr(a_end + 10));
    CHECK(a + b == 40);
    CHECK(a > 0);
    CHECK(b > 0);
}

TEST_CASE("echo_server gives an open connection one second after SIGINT, then cancels it",
          "[samples]") {
    Program server("echo_server", {"0"});
    std::string banner = server.read_line();
    REQUIRE_THAT(banner, Catch::StartsWith("echo server listening on 127.0.0.1:"));
    auto port = static_cast<std::uint16_t>(std::stoi(banner.substr(banner.rfind(':') + 1)));

    int fd = connect_to(port);
    char echo[3] = {};
    REQUIRE(::write(fd, "hi\n", 3) == 3);
    REQUIRE(::recv(fd, echo, 3, MSG_WAITALL) == 3); // the server is serving this connection
    CHECK(std::string(echo, 3) == "hi\n");

    auto start = Clock::now();
    server.signal(SIGINT);
    std::string rest = server.read_rest();
    int code = server.wait();
    auto took = Clock::now() - start;
    char byte;
    ssize_t end = ::recv(fd, &byte, 1, 0); // the server closed the connection
    ::close(fd);
    CHECK(code == 0);
    CHECK(rest == "SIGINT received: closing the listener\n"
                  "1 connection(s) still open after 1 s: cancelling them\n"
                  "served 1 connections\n");
    CHECK(took >= 900ms);
    CHECK(took < 20s);
    CHECK(end == 0);
}

TEST_CASE("echo_client exits with 1 when its echoes cannot be verified", "[samples]") {
    const std::uint16_t port = free_port(); // nothing listens there
    Program client("echo_client", {"--port", std::to_string(port), "--clients", "3", "--quiet"});
    std::string summary = client.read_rest();
    CHECK(client.wait() == 1);
    CHECK(summary == "0 of 3 clients connected, 0 of 15 echoes matched (0 bytes): FAILED\n");
}

TEST_CASE("echo samples reject bad arguments with exit code 2", "[samples]") {
    Program server("echo_server", {"not-a-port"});
    CHECK(server.wait() == 2);
    Program no_threads("echo_server", {"0", "--threads", "0"});
    CHECK(no_threads.wait() == 2);
    Program client("echo_client", {"--clients", "0"});
    CHECK(client.wait() == 2);
}
