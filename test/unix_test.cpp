// Tests of UnixListener and UnixStream: filesystem paths (the file stays: unlinking is the
// caller's business) and abstract names, socketpair streams, addresses, single-shot accept
// mode, and errors naming the address (missing path, busy path, wrong address family).
#include "support.hpp"

#include <array>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::Task;
using ringlet::UnixListener;
using ringlet::UnixStream;

std::string text(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// A fresh directory for socket files, removed with its content.
class TempDir {
  public:
    TempDir() {
        char pattern[] = "/tmp/ringlet-unix-XXXXXX";
        if (::mkdtemp(pattern) == nullptr)
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        path = pattern;
    }
    ~TempDir() {
        ::unlink((path + "/s").c_str());
        ::rmdir(path.c_str());
    }
    std::string path;
};

/// An abstract name unique to this process and call.
Address unique_abstract() {
    static int counter = 0;
    return Address::unix_abstract("ringlet-test-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(++counter));
}

Task<std::string> echo_once(UnixListener& listener) {
    UnixStream client = co_await UnixStream::connect(listener.local_address());
    UnixStream server = co_await listener.accept();
    co_await client.send_all(std::string_view("over unix"));
    client.shutdown_write();
    std::array<std::byte, 64> buffer;
    std::string got;
    for (;;) {
        std::size_t n = co_await server.recv(buffer);
        if (n == 0)
            break;
        got += text(std::span(buffer).first(n));
    }
    co_await server.send_all(got);
    server.close();
    std::string back;
    for (;;) {
        std::size_t n = co_await client.recv(buffer);
        if (n == 0)
            break;
        back += text(std::span(buffer).first(n));
    }
    co_return back;
}

} // namespace

TEST_CASE("UnixListener on a path accepts UnixStream connections", "[net][unix]") {
    TempDir dir;
    Address where = Address::unix_path(dir.path + "/s");
    UnixListener listener = UnixListener::bind(where);
    CHECK(listener.local_address() == where);
    std::string back = run_real(echo_once(listener));
    CHECK(back == "over unix");
    listener.close();
    struct stat info;
    CHECK(::stat((dir.path + "/s").c_str(), &info) == 0); // the file is the caller's business
    CHECK(S_ISSOCK(info.st_mode));
}

TEST_CASE("UnixListener on an abstract name accepts connections", "[net][unix]") {
    Address where = unique_abstract();
    UnixListener listener = UnixListener::bind(where);
    CHECK(listener.local_address() == where);
    CHECK(listener.local_address().is_abstract());
    std::string back = run_real(echo_once(listener));
    CHECK(back == "over unix");
}

TEST_CASE("UnixStream addresses: the client's peer is the listener, the server's is unnamed",
          "[net][unix]") {
    run_real([]() -> Task<> {
        Address where = unique_abstract();
        UnixListener listener = UnixListener::bind(where);
        UnixStream client = co_await UnixStream::connect(where);
        UnixStream server = co_await listener.accept();
        CHECK(client.peer_address() == where);
        CHECK(server.local_address() == where);
        CHECK(server.peer_address().family() == ringlet::AddressFamily::unix_domain);
        CHECK(server.peer_address().to_string() == "unix:");
    }());
}

TEST_CASE("UnixStream pair gives two connected streams", "[net][unix]") {
    run_real([]() -> Task<> {
        auto [a, b] = UnixStream::pair();
        co_await a.send_all(std::string_view("left"));
        co_await b.send_all(std::string_view("right"));
        std::array<std::byte, 4> four;
        co_await b.recv_exactly(four);
        CHECK(text(four) == "left");
        std::array<std::byte, 5> five;
        co_await a.recv_exactly(five);
        CHECK(text(five) == "right");
        a.close();
        std::size_t n = co_await b.recv(five);
        CHECK(n == 0);
    }());
}

TEST_CASE("UnixListener in single-shot accept mode", "[net][unix]") {
    ringlet::LoopOptions o = options();
    o.multishot_accept = false;
    Address where = unique_abstract();
    UnixListener listener = UnixListener::bind(where);
    std::string back = ringlet::run(echo_once(listener), o);
    CHECK(back == "over unix");
}

TEST_CASE("Unix socket errors name the address", "[net][unix]") {
    TempDir dir;
    Address missing = Address::unix_path(dir.path + "/none");
    std::string what = run_real([](Address a) -> Task<std::string> {
        try {
            (void)co_await UnixStream::connect(a);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
            co_return e.what();
        }
        co_return "connected";
    }(missing));
    CHECK(what.starts_with("connect to unix:" + dir.path + "/none: "));

    Address where = Address::unix_path(dir.path + "/s");
    UnixListener first = UnixListener::bind(where);
    first.close(); // the file stays: binding it again fails until it is unlinked
    try {
        (void)UnixListener::bind(where);
        FAIL("bind over an existing socket file succeeded");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK(std::string(e.what()).starts_with("bind to unix:" + dir.path + "/s: "));
    }
    ::unlink((dir.path + "/s").c_str());
    UnixListener second = UnixListener::bind(where);
    CHECK(second.is_open());

    CHECK_THROWS_AS(UnixListener::bind(Address::parse("127.0.0.1:0")), std::invalid_argument);
    CHECK_THROWS_AS(run_real(UnixStream::connect(Address::parse("127.0.0.1:1"))),
                    std::invalid_argument);
}
