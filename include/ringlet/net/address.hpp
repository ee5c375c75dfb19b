// Address: a socket address (IPv4, IPv6, Unix path, abstract Unix) held by value, with parsing,
// formatting (to_string and an fmt formatter) and resolve() (getaddrinfo on the loop's thread
// pool). Thread safety: Address is a plain value type; resolve() runs on the loop thread.
#pragma once

#include "ringlet/task.hpp"

#include <compare>
#include <cstdint>
#include <fmt/format.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

namespace ringlet {

/// The kind of an Address. (`unix` itself is a predefined macro in GNU modes.)
enum class AddressFamily : std::uint8_t {
    unspecified, ///< a default-constructed Address
    ipv4,
    ipv6,
    unix_domain, ///< a filesystem path, an abstract name, or unnamed
};

/// A socket address. Textual forms (parse() and to_string() agree): "127.0.0.1:8001",
/// "[::1]:80", "[fe80::1%eth0]:80", "unix:/run/app.sock", "unix:@abstract-name".
class Address {
  public:
    /// An unspecified address (family() == AddressFamily::unspecified).
    Address() noexcept;

    /// Parses a numeric address; host names are not looked up here (see resolve()).
    /// Throws: std::invalid_argument naming the text if it is not one of the forms above, or
    /// the port is missing, not a number, or above 65535.
    static Address parse(std::string_view text);
    /// An IPv4 address from a dotted-quad literal. Throws: std::invalid_argument naming `host`.
    static Address ipv4(std::string_view host, std::uint16_t port);
    /// An IPv6 address from a literal without brackets ("::1", "fe80::1%eth0").
    /// Throws: std::invalid_argument naming `host`.
    static Address ipv6(std::string_view host, std::uint16_t port);
    /// A Unix socket path. Throws: std::invalid_argument if empty or too long for sun_path.
    static Address unix_path(std::string_view path);
    /// An abstract Unix socket name (Linux; no file is created; `name` without the leading NUL).
    /// Throws: std::invalid_argument if too long for sun_path.
    static Address unix_abstract(std::string_view name);
    /// Copies a kernel-provided address. Throws: std::invalid_argument if `length` is too big.
    static Address from_native(const sockaddr* address, socklen_t length);

    /// IPv4, IPv6, Unix, or unspecified for a default-constructed Address.
    AddressFamily family() const noexcept;
    /// The port of an IP address; 0 for Unix addresses.
    std::uint16_t port() const noexcept;
    /// The same address with another port. Throws: std::logic_error if not an IP address.
    Address with_port(std::uint16_t port) const;
    /// The numeric host of an IP address ("127.0.0.1", "::1", "fe80::1%eth0"); empty otherwise.
    std::string host() const;
    /// The path (or abstract name, without '@') of a Unix address; empty otherwise.
    std::string unix_name() const;
    /// True for an abstract Unix address.
    bool is_abstract() const noexcept;
    /// The textual form parse() accepts; "unix:" for an unnamed Unix socket, "" if unspecified.
    std::string to_string() const;

    /// The sockaddr for system calls.
    const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* native() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t native_size() const noexcept { return length_; }
    /// For system calls that fill the address in: the capacity, then set_native_size().
    static constexpr socklen_t native_capacity() noexcept { return sizeof(sockaddr_storage); }
    /// Throws: std::invalid_argument if `length` exceeds native_capacity().
    void set_native_size(socklen_t length);

    /// Same family and same address: host and port (and IPv6 scope; not the flow label), or
    /// the same Unix path or abstract name.
    friend bool operator==(const Address& a, const Address& b) noexcept;

  private:
    sockaddr_storage storage_;
    socklen_t length_;
};

/// Resolves `host` (a name or a numeric literal) for `port` with getaddrinfo, run on the loop's
/// default executor (to_thread); numeric hosts return at once. Stream-socket results only, in
/// getaddrinfo's order, without duplicates.
/// Throws: std::system_error naming the host (category "getaddrinfo") if the lookup fails.
/// Cancellation: CancelledError at once; the lookup finishes on its thread and is dropped.
Task<std::vector<Address>> resolve(std::string host, std::uint16_t port);

} // namespace ringlet

/// `fmt::format("{}", address)` gives address.to_string().
template <>
struct fmt::formatter<ringlet::Address> : fmt::formatter<std::string_view> {
    template <class FormatContext>
    auto format(const ringlet::Address& address, FormatContext& ctx) const {
        return fmt::formatter<std::string_view>::format(address.to_string(), ctx);
    }
};
