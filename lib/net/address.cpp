// Address parsing and formatting, and resolve() (getaddrinfo on the loop's default executor).
// Addresses are always zero-filled sockaddr_storage, so that the bytes past the meaningful part
// never differ between equal addresses.
#include "ringlet/net/address.hpp"

#include "ringlet/thread.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/un.h>
#include <system_error>

namespace ringlet {
namespace {

constexpr socklen_t sun_path_offset = offsetof(sockaddr_un, sun_path);
// One byte of sun_path is kept for the terminating NUL of a path (and the leading NUL of an
// abstract name), as portable code does.
constexpr std::size_t max_unix_name = sizeof(sockaddr_un::sun_path) - 1;

[[noreturn]] void bad_address(std::string_view text, std::string_view why) {
    std::string message = "invalid address \"";
    message += text;
    message += "\": ";
    message += why;
    throw std::invalid_argument(message);
}

std::uint16_t parse_port(std::string_view text, std::string_view port) {
    if (port.empty())
        bad_address(text, "missing port");
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc{} && end == port.data() + port.size() && value > 65535))
        bad_address(text, "port out of range (0-65535)");
    if (ec != std::errc{} || end != port.data() + port.size())
        bad_address(text, "port is not a number");
    return static_cast<std::uint16_t>(value);
}

bool parse_ipv4(std::string_view host, in_addr& out) {
    if (host.empty() || host.size() >= INET_ADDRSTRLEN)
        return false;
    char buffer[INET_ADDRSTRLEN] = {};
    std::memcpy(buffer, host.data(), host.size());
    return inet_pton(AF_INET, buffer, &out) == 1;
}

/// "::1" or "fe80::1%eth0" (scope: an interface name or number).
bool parse_ipv6(std::string_view host, in6_addr& out, std::uint32_t& scope) {
    scope = 0;
    std::string_view literal = host;
    if (auto percent = host.find('%'); percent != std::string_view::npos) {
        literal = host.substr(0, percent);
        std::string_view zone = host.substr(percent + 1);
        if (zone.empty() || zone.size() >= IF_NAMESIZE)
            return false;
        auto [end, ec] = std::from_chars(zone.data(), zone.data() + zone.size(), scope);
        if (ec != std::errc{} || end != zone.data() + zone.size()) {
            char name[IF_NAMESIZE] = {};
            std::memcpy(name, zone.data(), zone.size());
            scope = if_nametoindex(name);
            if (scope == 0)
                return false;
        }
    }
    if (literal.empty() || literal.size() >= INET6_ADDRSTRLEN)
        return false;
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, literal.data(), literal.size());
    return inet_pton(AF_INET6, buffer, &out) == 1;
}

/// The resolver's error category: getaddrinfo's EAI_* codes with gai_strerror's texts.
class GaiCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int code) const override { return gai_strerror(code); }
};

const std::error_category& gai_category() noexcept {
    static const GaiCategory category;
    return category;
}

/// What the worker thread hands back.
struct Lookup {
    int gai_error = 0;
    int system_error = 0;
    std::vector<Address> addresses;
};

Lookup lookup(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    std::string service = std::to_string(port);
    Lookup out;
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (rc != 0) {
        out.gai_error = rc;
        out.system_error = rc == EAI_SYSTEM ? errno : 0;
        return out;
    }
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        Address a = Address::from_native(ai->ai_addr, ai->ai_addrlen);
        if (std::find(out.addresses.begin(), out.addresses.end(), a) == out.addresses.end())
            out.addresses.push_back(a);
    }
    freeaddrinfo(list);
    return out;
}

} // namespace

Address::Address() noexcept : storage_{}, length_(0) {
}

Address Address::parse(std::string_view text) {
    if (text.empty())
        bad_address(text, "empty address");
    if (text.starts_with("unix:")) {
        std::string_view name = text.substr(5);
        if (name.starts_with('@'))
            return unix_abstract(name.substr(1));
        if (name.empty())
            bad_address(text, "empty Unix socket path");
        return unix_path(name);
    }
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            bad_address(text, "missing ']' after the IPv6 address");
        std::string_view host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':')
            bad_address(text, "missing \":port\" after the IPv6 address");
        std::uint16_t port = parse_port(text, rest.substr(1));
        in6_addr address;
        std::uint32_t scope;
        if (!parse_ipv6(host, address, scope))
            bad_address(text, "not a numeric IPv6 address");
        return ipv6(host, port);
    }
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
        bad_address(text, "missing \":port\"");
    std::string_view host = text.substr(0, colon);
    if (host.empty())
        bad_address(text, "missing host");
    if (host.find(':') != std::string_view::npos)
        bad_address(text, "an IPv6 address needs brackets, as in \"[::1]:80\"");
    std::uint16_t port = parse_port(text, text.substr(colon + 1));
    in_addr address;
    if (!parse_ipv4(host, address))
        bad_address(text, "not a numeric IPv4 address (use resolve() for host names)");
    return ipv4(host, port);
}

Address Address::ipv4(std::string_view host, std::uint16_t port) {
    Address a;
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage_);
    if (!parse_ipv4(host, in->sin_addr))
        bad_address(host, "not a numeric IPv4 address");
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    a.length_ = sizeof(sockaddr_in);
    return a;
}

Address Address::ipv6(std::string_view host, std::uint16_t port) {
    Address a;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    std::uint32_t scope;
    if (!parse_ipv6(host, in6->sin6_addr, scope))
        bad_address(host, "not a numeric IPv6 address");
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_scope_id = scope;
    a.length_ = sizeof(sockaddr_in6);
    return a;
}

Address Address::unix_path(std::string_view path) {
    if (path.empty())
        bad_address(path, "empty Unix socket path");
    if (path.size() > max_unix_name)
        bad_address(path,
                    "Unix socket path longer than " + std::to_string(max_unix_name) + " bytes");
    if (path.find('\0') != std::string_view::npos)
        bad_address(path, "NUL byte in a Unix socket path");
    Address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    a.length_ = static_cast<socklen_t>(sun_path_offset + path.size() + 1);
    return a;
}

Address Address::unix_abstract(std::string_view name) {
    if (name.size() > max_unix_name)
        bad_address(name, "abstract Unix socket name longer than " + std::to_string(max_unix_name) +
                              " bytes");
    Address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path + 1, name.data(), name.size());
    a.length_ = static_cast<socklen_t>(sun_path_offset + 1 + name.size());
    return a;
}

Address Address::from_native(const sockaddr* address, socklen_t length) {
    Address a;
    if (length > native_capacity())
        throw std::invalid_argument("socket address length " + std::to_string(length) +
                                    " exceeds sockaddr_storage");
    std::memcpy(&a.storage_, address, length);
    a.set_native_size(length);
    return a;
}

void Address::set_native_size(socklen_t length) {
    if (length > native_capacity())
        throw std::invalid_argument("socket address length " + std::to_string(length) +
                                    " exceeds sockaddr_storage");
    length_ = length;
    auto* bytes = reinterpret_cast<unsigned char*>(&storage_);
    std::memset(bytes + length, 0, sizeof(storage_) - length);
    if (storage_.ss_family == AF_UNIX && length > sun_path_offset) {
        // The kernel may count a path's terminating NUL or not: normalise to counting it.
        auto* un = reinterpret_cast<sockaddr_un*>(&storage_);
        if (un->sun_path[0] != '\0') {
            std::size_t n = strnlen(un->sun_path, length - sun_path_offset);
            length_ =
                static_cast<socklen_t>(sun_path_offset + std::min(n + 1, sizeof(un->sun_path)));
        }
    }
}

AddressFamily Address::family() const noexcept {
    if (length_ == 0)
        return AddressFamily::unspecified;
    switch (storage_.ss_family) {
    case AF_INET:
        return AddressFamily::ipv4;
    case AF_INET6:
        return AddressFamily::ipv6;
    case AF_UNIX:
        return AddressFamily::unix_domain;
    default:
        return AddressFamily::unspecified;
    }
}

std::uint16_t Address::port() const noexcept {
    switch (family()) {
    case AddressFamily::ipv4:
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AddressFamily::ipv6:
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
        return 0;
    }
}

Address Address::with_port(std::uint16_t port) const {
    Address a = *this;
    switch (family()) {
    case AddressFamily::ipv4:
        reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = htons(port);
        return a;
    case AddressFamily::ipv6:
        reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port = htons(port);
        return a;
    default:
        throw std::logic_error("with_port on \"" + to_string() + "\", which is not an IP address");
    }
}

std::string Address::host() const {
    char buffer[INET6_ADDRSTRLEN + IF_NAMESIZE + 1] = {};
    switch (family()) {
    case AddressFamily::ipv4:
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buffer,
                  sizeof(buffer));
        return buffer;
    case AddressFamily::ipv6: {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
        inet_ntop(AF_INET6, &in6->sin6_addr, buffer, sizeof(buffer));
        std::string out = buffer;
        if (in6->sin6_scope_id != 0) {
            char name[IF_NAMESIZE] = {};
            out += '%';
            if (if_indextoname(in6->sin6_scope_id, name) != nullptr)
                out += name;
            else
                out += std::to_string(in6->sin6_scope_id);
        }
        return out;
    }
    default:
        return {};
    }
}

bool Address::is_abstract() const noexcept {
    return family() == AddressFamily::unix_domain && length_ > sun_path_offset &&
           reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path[0] == '\0';
}

std::string Address::unix_name() const {
    if (family() != AddressFamily::unix_domain || length_ <= sun_path_offset)
        return {};
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    std::size_t n = length_ - sun_path_offset;
    if (un->sun_path[0] == '\0')
        return std::string(un->sun_path + 1, n - 1);
    return std::string(un->sun_path, strnlen(un->sun_path, n));
}

std::string Address::to_string() const {
    switch (family()) {
    case AddressFamily::ipv4:
        return host() + ':' + std::to_string(port());
    case AddressFamily::ipv6:
        return '[' + host() + "]:" + std::to_string(port());
    case AddressFamily::unix_domain:
        return (is_abstract() ? "unix:@" : "unix:") + unix_name();
    default:
        return {};
    }
}

bool operator==(const Address& a, const Address& b) noexcept {
    AddressFamily family = a.family();
    if (family != b.family())
        return false;
    switch (family) {
    case AddressFamily::ipv4: {
        const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
        const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AddressFamily::ipv6: {
        // The flow label is not part of the address.
        const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
        const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
    }
    case AddressFamily::unix_domain:
        return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
    default:
        return true;
    }
}

Task<std::vector<Address>> resolve(std::string host, std::uint16_t port) {
    if (host.empty())
        throw std::invalid_argument("resolve: empty host name");
    // Numeric hosts need no lookup (and no thread).
    std::string_view literal = host;
    if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']')
        literal = literal.substr(1, literal.size() - 2);
    in_addr v4;
    if (parse_ipv4(literal, v4))
        co_return std::vector<Address>{Address::ipv4(literal, port)};
    in6_addr v6;
    std::uint32_t scope;
    if (parse_ipv6(literal, v6, scope))
        co_return std::vector<Address>{Address::ipv6(literal, port)};

    Lookup result = co_await to_thread(lookup, host, port);
    std::string what = "resolve " + host;
    if (result.gai_error == EAI_SYSTEM)
        throw std::system_error(result.system_error, std::generic_category(), what);
    if (result.gai_error != 0)
        throw std::system_error(result.gai_error, gai_category(), what);
    if (result.addresses.empty())
        throw std::system_error(EAI_NONAME, gai_category(), what);
    co_return std::move(result.addresses);
}

} // namespace ringlet
