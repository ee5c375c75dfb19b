// Tests of ringlet::Address (parse, to_string, ports, equality, the fmt formatter, bad input
// naming the bad text) and resolve() (numeric hosts at once, names through the thread pool,
// lookup failures as std::system_error naming the host).
#include "support.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::AddressFamily;
using ringlet::Task;

/// Checks that parse(text) throws std::invalid_argument whose message quotes the text.
void check_rejected(const std::string& text) {
    INFO("input: \"" << text << "\"");
    try {
        (void)Address::parse(text);
        FAIL("parse accepted \"" << text << "\"");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("\"" + text + "\"") != std::string::npos);
    }
}

} // namespace

TEST_CASE("Address parses IPv4 text and formats it back", "[net][address]") {
    Address a = Address::parse("127.0.0.1:8001");
    CHECK(a.family() == AddressFamily::ipv4);
    CHECK(a.port() == 8001);
    CHECK(a.host() == "127.0.0.1");
    CHECK(a.to_string() == "127.0.0.1:8001");
    CHECK(a.native()->sa_family == AF_INET);
    CHECK(a.native_size() == sizeof(sockaddr_in));
    CHECK(Address::parse("0.0.0.0:0").port() == 0);
    CHECK(Address::parse("255.255.255.255:65535").to_string() == "255.255.255.255:65535");
}

TEST_CASE("Address parses bracketed IPv6 text and formats it back", "[net][address]") {
    Address a = Address::parse("[::1]:80");
    CHECK(a.family() == AddressFamily::ipv6);
    CHECK(a.port() == 80);
    CHECK(a.host() == "::1");
    CHECK(a.to_string() == "[::1]:80");
    CHECK(Address::parse("[2001:DB8:0:0::1]:443").to_string() == "[2001:db8::1]:443");
    CHECK(Address::parse("[::ffff:10.0.0.1]:1").to_string() == "[::ffff:10.0.0.1]:1");
    // A numeric zone is kept (formatted back as a name when the interface exists).
    Address scoped = Address::parse("[fe80::1%1]:9");
    CHECK(scoped.port() == 9);
    CHECK(scoped.host().starts_with("fe80::1%"));
    CHECK(Address::parse(scoped.to_string()) == scoped);
}

TEST_CASE("Address parses Unix paths and abstract names", "[net][address]") {
    Address path = Address::parse("unix:/tmp/ringlet.sock");
    CHECK(path.family() == AddressFamily::unix_domain);
    CHECK_FALSE(path.is_abstract());
    CHECK(path.unix_name() == "/tmp/ringlet.sock");
    CHECK(path.port() == 0);
    CHECK(path.to_string() == "unix:/tmp/ringlet.sock");
    CHECK(path == Address::unix_path("/tmp/ringlet.sock"));

    Address abstract = Address::parse("unix:@ringlet-test");
    CHECK(abstract.family() == AddressFamily::unix_domain);
    CHECK(abstract.is_abstract());
    CHECK(abstract.unix_name() == "ringlet-test");
    CHECK(abstract.to_string() == "unix:@ringlet-test");
    CHECK(abstract == Address::unix_abstract("ringlet-test"));
    CHECK(abstract != path);
    CHECK(Address::unix_path("relative.sock").to_string() == "unix:relative.sock");
}

TEST_CASE("Address rejects bad text with std::invalid_argument naming it", "[net][address]") {
    for (const char* text : {"1.2.3:99999",
                             "",
                             ":80",
                             "1.2.3.4",
                             "[::1",
                             "host:abc",
                             "1.2.3.4:65536",
                             "1.2.3.4:99999999999999999999",
                             "1.2.3.4:",
                             "1.2.3.4:-1",
                             "1.2.3.4:+1",
                             "1.2.3:80",
                             "[::1]80",
                             "[::1]:",
                             "[]:80",
                             "[1.2.3.4]:80",
                             "::1:80",
                             "localhost:80",
                             "unix:",
                             "1.2.3.4:80x",
                             "[fe80::1%no-such-interface0]:80"})
        check_rejected(text);
    std::string too_long = "unix:/" + std::string(200, 'x');
    CHECK_THROWS_AS(Address::parse(too_long), std::invalid_argument);
    CHECK_THROWS_AS(Address::ipv4("::1", 1), std::invalid_argument);
    CHECK_THROWS_AS(Address::ipv6("1.2.3.4", 1), std::invalid_argument);
    CHECK_THROWS_AS(Address::unix_path(""), std::invalid_argument);
}

TEST_CASE("Address equality compares family, host and port", "[net][address]") {
    CHECK(Address::parse("127.0.0.1:80") == Address::ipv4("127.0.0.1", 80));
    CHECK(Address::parse("127.0.0.1:80") != Address::parse("127.0.0.1:81"));
    CHECK(Address::parse("127.0.0.1:80") != Address::parse("127.0.0.2:80"));
    CHECK(Address::parse("[::1]:80") == Address::ipv6("::1", 80));
    CHECK(Address::parse("[::1]:80") != Address::parse("127.0.0.1:80"));
    CHECK(Address() == Address());
    CHECK(Address().family() == AddressFamily::unspecified);
    CHECK(Address().to_string().empty());
    CHECK(Address() != Address::parse("127.0.0.1:80"));
}

TEST_CASE("Address with_port changes only the port", "[net][address]") {
    Address a = Address::parse("10.1.2.3:1").with_port(4242);
    CHECK(a == Address::parse("10.1.2.3:4242"));
    CHECK(Address::parse("[::1]:1").with_port(2).to_string() == "[::1]:2");
    CHECK_THROWS_AS(Address::unix_abstract("x").with_port(1), std::logic_error);
}

TEST_CASE("Address has an fmt formatter giving to_string", "[net][address]") {
    CHECK(fmt::format("{}", Address::parse("127.0.0.1:8001")) == "127.0.0.1:8001");
    CHECK(fmt::format("peer {}!", Address::parse("[::1]:80")) == "peer [::1]:80!");
    CHECK(fmt::format("{:>16}", Address::parse("1.2.3.4:5")) == "       1.2.3.4:5");
    CHECK(fmt::format("{}", Address::unix_abstract("n")) == "unix:@n");
}

TEST_CASE("Address from_native copies a kernel address", "[net][address]") {
    Address a = Address::parse("192.168.0.1:99");
    Address b = Address::from_native(a.native(), a.native_size());
    CHECK(b == a);
    CHECK(b.to_string() == "192.168.0.1:99");
    CHECK_THROWS_AS(Address::from_native(a.native(), 4096), std::invalid_argument);
}

TEST_CASE("resolve returns numeric hosts without a lookup", "[net][address]") {
    auto result = run_real([]() -> Task<std::vector<Address>> {
        std::vector<Address> all = co_await ringlet::resolve("127.0.0.1", 80);
        std::vector<Address> v6 = co_await ringlet::resolve("::1", 81);
        std::vector<Address> bracketed = co_await ringlet::resolve("[::1]", 82);
        all.insert(all.end(), v6.begin(), v6.end());
        all.insert(all.end(), bracketed.begin(), bracketed.end());
        co_return all;
    }());
    REQUIRE(result.size() == 3);
    CHECK(result[0] == Address::parse("127.0.0.1:80"));
    CHECK(result[1] == Address::parse("[::1]:81"));
    CHECK(result[2] == Address::parse("[::1]:82"));
}

TEST_CASE("resolve looks localhost up on the thread pool", "[net][address]") {
    auto result = run_real([]() -> Task<std::vector<Address>> {
        co_return co_await ringlet::resolve("localhost", 8080);
    }());
    REQUIRE_FALSE(result.empty());
    for (const Address& a : result) {
        INFO(a.to_string());
        CHECK(a.port() == 8080);
        CHECK((a == Address::parse("127.0.0.1:8080") || a == Address::parse("[::1]:8080")));
    }
}

TEST_CASE("resolve failure is a std::system_error naming the host", "[net][address]") {
    std::string what = run_real([]() -> Task<std::string> {
        try {
            (void)co_await ringlet::wait_for(ringlet::resolve("no-such-host.invalid", 80), 30s);
        } catch (const std::system_error& e) {
            co_return e.what();
        }
        co_return "no error";
    }());
    CHECK(what.find("resolve no-such-host.invalid") != std::string::npos);
    CHECK_THROWS_AS(run_real(ringlet::resolve("", 80)), std::invalid_argument);
}
