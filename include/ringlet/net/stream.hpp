// Buffered streams, as asyncio's streams module: StreamReader (read_line, read_until,
// read_exactly, read_some, with a limit) over any stream with an awaitable recv(), and the TCP
// conveniences open_connection() and start_server(). Bytes are read straight into the reader's
// buffer and committed there before anything else can suspend, so a cancelled read (wait_for)
// loses nothing: the next read finds the bytes. Loop thread only.
#pragma once

#include "ringlet/errors.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/tcp.hpp"
#include "ringlet/task.hpp"
#include "ringlet/wait_for.hpp"

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringlet {

/// A stream StreamReader can read from: `co_await stream.recv(buffer)` yields the number of bytes
/// received into `buffer`, 0 at end of stream (TcpStream, UnixStream, or a stream of your own).
template <class S>
concept ByteStream = requires(S& stream, std::span<std::byte> buffer) {
    requires detail::Awaitable<decltype(stream.recv(buffer))>;
    requires std::convertible_to<detail::await_value_t<decltype(stream.recv(buffer))>, std::size_t>;
};

/// The default limit of a StreamReader (asyncio's 64 KiB).
inline constexpr std::size_t default_stream_limit = 64 * 1024;

/// A buffered reader over a stream (asyncio.StreamReader, pulling from the stream instead of
/// being fed by a protocol). One read at a time: a second read while one is in progress throws
/// std::logic_error (asyncio raises RuntimeError).
/// Unlike asyncio's readline(), read_line() past the limit behaves as read_until(): it throws
/// LimitOverrunError and leaves the bytes buffered, so the caller decides what to drop.
/// Cancellation: every read is cancellable and loses nothing: the bytes received before the
/// cancellation stay buffered for the next read (a read that already has its result returns it).
/// Lifetime: the stream must outlive the reader and stay at the same address while the reader
/// is used (see rebind()); the reader must outlive its reads.
template <ByteStream Stream>
class StreamReader {
  public:
    /// Reads from `stream`; `limit` bounds how far read_until()/read_line() look for their
    /// delimiter. Throws: std::invalid_argument if `limit` is 0.
    explicit StreamReader(Stream& stream, std::size_t limit = default_stream_limit)
        : stream_(&stream), limit_(limit) {
        if (limit == 0)
            throw std::invalid_argument("ringlet::StreamReader: limit must be positive");
    }
    /// Moves the buffered bytes; the new reader reads the same stream.
    /// Throws: std::logic_error if a read is in progress on `other` (nothing is moved then).
    StreamReader(StreamReader&& other)
        : stream_(other.idle("moved").stream_), buffer_(std::move(other.buffer_)),
          begin_(std::exchange(other.begin_, 0)), end_(std::exchange(other.end_, 0)),
          limit_(other.limit_), eof_(other.eof_) {}
    StreamReader& operator=(StreamReader&& other) {
        idle("moved");
        other.idle("moved");
        stream_ = other.stream_;
        buffer_ = std::move(other.buffer_);
        begin_ = std::exchange(other.begin_, 0);
        end_ = std::exchange(other.end_, 0);
        limit_ = other.limit_;
        eof_ = other.eof_;
        return *this;
    }
    StreamReader(const StreamReader&) = delete;
    StreamReader& operator=(const StreamReader&) = delete;

    /// Reads up to and including the next '\n'. At end of stream, returns the partial last line
    /// without '\n', then "" (asyncio's readline()).
    /// Throws: LimitOverrunError if no '\n' is found within the limit (the bytes stay buffered:
    /// read_some() returns them); what the stream's recv throws.
    /// Cancellation: as the class; no byte is lost.
    Task<std::string> read_line() { return read_line_impl(); }

    /// Reads up to and including `delimiter` (asyncio's readuntil()).
    /// Throws: std::invalid_argument if `delimiter` is empty (at the call); IncompleteReadError
    /// carrying everything buffered if the stream ends first (expected is SIZE_MAX: unknown);
    /// LimitOverrunError if the delimiter is not found within the limit, or is found but more
    /// than `limit` bytes precede it (the bytes stay buffered; `consumed` tells how many were
    /// searched); what the stream's recv throws.
    /// Cancellation: as the class; no byte is lost.
    Task<std::string> read_until(std::string delimiter) {
        if (delimiter.empty())
            throw std::invalid_argument("ringlet::StreamReader::read_until: empty delimiter");
        return read_until_impl(std::move(delimiter));
    }

    /// Reads exactly `n` bytes (asyncio's readexactly()); the limit does not apply.
    /// Throws: IncompleteReadError carrying the bytes that arrived if the stream ends first
    /// (they are consumed); what the stream's recv throws.
    /// Cancellation: as the class; the bytes received so far stay buffered.
    Task<std::vector<std::byte>> read_exactly(std::size_t n) { return read_exactly_impl(n); }

    /// Reads at most `max` bytes: what is buffered if anything is, else the result of one
    /// recv; empty only at end of stream or for `max` == 0 (asyncio's read(n)).
    /// Throws: what the stream's recv throws.
    /// Cancellation: as the class; no byte is lost.
    Task<std::vector<std::byte>> read_some(std::size_t max = default_stream_limit) {
        return read_some_impl(max);
    }

    /// True once the stream has ended and every buffered byte has been read.
    bool at_eof() const noexcept { return eof_ && begin_ == end_; }
    /// Bytes received and not read yet.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    std::size_t limit() const noexcept { return limit_; }
    Stream& stream() const noexcept { return *stream_; }
    /// Reads from `stream` from now on, keeping the buffered bytes (after the stream object was
    /// moved to a new address). Throws: std::logic_error if a read is in progress.
    void rebind(Stream& stream) { idle("rebound").stream_ = &stream; }

  private:
    /// Marks a read in progress for its whole duration, however it ends.
    class ReadGuard {
      public:
        ReadGuard(StreamReader& reader, const char* operation) : reader_(reader) {
            if (reader_.reading_)
                throw std::logic_error(std::string("ringlet::StreamReader::") + operation +
                                       " called while another read is in progress");
            reader_.reading_ = true;
        }
        ReadGuard(const ReadGuard&) = delete;
        ReadGuard& operator=(const ReadGuard&) = delete;
        ~ReadGuard() { reader_.reading_ = false; }

      private:
        StreamReader& reader_;
    };

    static constexpr std::size_t chunk_size = 16 * 1024;

    /// This reader, after checking that no read is in progress (moves and rebinds need that).
    StreamReader& idle(const char* what) {
        if (reading_)
            throw std::logic_error(std::string("ringlet::StreamReader ") + what +
                                   " while a read is in progress");
        return *this;
    }

    std::string_view view() const noexcept {
        return {reinterpret_cast<const char*>(buffer_.data()) + begin_, end_ - begin_};
    }
    std::string take_text(std::size_t n) {
        std::string out(view().substr(0, n));
        consume(n);
        return out;
    }
    std::vector<std::byte> take_bytes(std::size_t n) {
        std::vector<std::byte> out(buffer_.begin() + static_cast<std::ptrdiff_t>(begin_),
                                   buffer_.begin() + static_cast<std::ptrdiff_t>(begin_ + n));
        consume(n);
        return out;
    }
    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ != end_)
            return;
        begin_ = end_ = 0;
        if (buffer_.size() > 4 * chunk_size) // after a large read_exactly: give the memory back
            std::vector<std::byte>().swap(buffer_);
    }

    /// One recv into the free space after the buffered bytes; false at end of stream. The byte
    /// count is committed (end_) before anything else can suspend or throw.
    Task<bool> fill() {
        if (eof_)
            co_return false;
        if (buffer_.size() - end_ < chunk_size) {
            if (begin_ > 0) { // compact: move the unread bytes to the front
                std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
                end_ -= begin_;
                begin_ = 0;
            }
            if (buffer_.size() - end_ < chunk_size)
                buffer_.resize(std::max(end_ + chunk_size, buffer_.size() * 2));
        }
        std::span<std::byte> space(buffer_.data() + end_, buffer_.size() - end_);
        auto receiving = stream_->recv(space);
        std::size_t n = co_await receiving;
        end_ += n;
        if (n == 0)
            eof_ = true;
        co_return n > 0;
    }

    /// Waits until `delimiter` is buffered and returns the length up to and including it, or
    /// nullopt at end of stream. Throws LimitOverrunError as read_until() describes.
    Task<std::optional<std::size_t>> find(std::string_view delimiter) {
        std::size_t offset = 0; // where the search resumes: nothing before it can match
        for (;;) {
            std::string_view data = view();
            if (data.size() >= delimiter.size() + offset) {
                std::size_t at = data.find(delimiter, offset);
                if (at != std::string_view::npos) {
                    if (at > limit_)
                        throw LimitOverrunError("separator is found, but chunk is longer than "
                                                "limit",
                                                at);
                    co_return at + delimiter.size();
                }
                offset = data.size() + 1 - delimiter.size();
                if (offset > limit_)
                    throw LimitOverrunError("separator is not found, and chunk exceeds the limit",
                                            offset);
            }
            bool more = co_await fill();
            if (!more)
                co_return std::nullopt;
        }
    }

    Task<std::string> read_line_impl() {
        ReadGuard guard(*this, "read_line");
        std::optional<std::size_t> length = co_await find("\n");
        co_return take_text(length ? *length : buffered());
    }

    Task<std::string> read_until_impl(std::string delimiter) {
        ReadGuard guard(*this, "read_until");
        std::optional<std::size_t> length = co_await find(delimiter);
        if (!length)
            throw IncompleteReadError(take_bytes(buffered()),
                                      std::numeric_limits<std::size_t>::max());
        co_return take_text(*length);
    }

    Task<std::vector<std::byte>> read_exactly_impl(std::size_t n) {
        ReadGuard guard(*this, "read_exactly");
        while (buffered() < n) {
            bool more = co_await fill();
            if (!more)
                throw IncompleteReadError(take_bytes(buffered()), n);
        }
        co_return take_bytes(n);
    }

    Task<std::vector<std::byte>> read_some_impl(std::size_t max) {
        ReadGuard guard(*this, "read_some");
        if (max == 0)
            co_return std::vector<std::byte>{};
        if (buffered() == 0)
            co_await fill();
        co_return take_bytes(std::min(max, buffered()));
    }

    Stream* stream_;
    std::vector<std::byte> buffer_;
    std::size_t begin_ = 0; // first unread byte
    std::size_t end_ = 0;   // one past the last received byte
    std::size_t limit_;
    bool eof_ = false;
    bool reading_ = false;
};

/// The reader start_server() hands to its connection handler.
using TcpStreamReader = StreamReader<TcpStream>;

/// What open_connection() yields: the stream (write with send/send_all) and a reader on it
/// (asyncio's (reader, writer) pair): `auto [reader, stream] = co_await open_connection(..);`.
/// Moving a Connection keeps the reader on the moved stream.
struct Connection {
    Connection(TcpStream connected, std::size_t limit)
        : reader(stream, limit), stream(std::move(connected)) {}
    Connection(Connection&& other)
        : reader(std::move(other.reader)), stream(std::move(other.stream)) {
        reader.rebind(stream);
    }
    Connection& operator=(Connection&& other) {
        reader = std::move(other.reader);
        stream = std::move(other.stream);
        reader.rebind(stream);
        return *this;
    }

    TcpStreamReader reader;
    TcpStream stream;
};

/// Connects to `host`:`port` (resolved with resolve(), each address tried in order) and wraps
/// the stream (asyncio.open_connection).
/// Throws: std::system_error from the lookup or the connect ("connect to 127.0.0.1:9: ...").
/// Cancellation: CancelledError; a socket being connected is closed.
Task<Connection> open_connection(std::string host, std::uint16_t port,
                                 std::size_t limit = default_stream_limit);
/// Connects to `address` (IPv4 or IPv6). Throws: as above; std::invalid_argument if `address`
/// is not an IP address.
Task<Connection> open_connection(Address address, std::size_t limit = default_stream_limit);

/// What start_server() calls for each connection, in a task of its own. The reader and the
/// stream live in that task until the returned Task finishes; the stream is closed afterwards.
using ConnectionHandler = std::function<Task<>(TcpStreamReader& reader, TcpStream& stream)>;

namespace detail {
struct ServerState;
}

/// A listening server started by start_server() (asyncio.Server). Move-only.
/// Lifetime: destroying a Server closes it and cancels its connection handlers, which then
/// finish on the loop; await wait_closed() first to let them finish. The handler (and what it
/// references) must outlive the handlers' tasks.
class Server {
  public:
    Server() noexcept = default;
    explicit Server(std::shared_ptr<detail::ServerState> state) noexcept
        : state_(std::move(state)) {}
    Server(Server&&) noexcept = default;
    Server& operator=(Server&& other) noexcept;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    /// The listening address (with the real port when bound to port 0).
    /// Throws: std::logic_error if the Server is empty.
    const Address& local_address() const;
    /// Stops accepting: the listening socket is closed at once (new connections are refused);
    /// connections already accepted keep running. Idempotent.
    void close() noexcept;
    /// Cancels the handler of every open connection (each gets CancelledError at its current
    /// suspension point; the stream is closed when it finishes).
    void close_clients() noexcept;
    /// Waits until close() was called and every connection handler has finished (asyncio 3.12).
    /// Throws: std::logic_error if the Server is empty.
    /// Cancellation: CancelledError; the server is unaffected.
    Task<> wait_closed() const;
    /// Waits until the server is closed (by close(), or because accepting failed: that error is
    /// rethrown). Throws: std::logic_error if the Server is empty.
    /// Cancellation: closes the server (as asyncio does), then raises CancelledError.
    Task<> serve_forever() const;

    /// False once closed (or empty).
    bool is_serving() const noexcept;
    /// Connections whose handler has not finished yet.
    std::size_t active_connections() const noexcept;
    /// Connections accepted since the start.
    std::uint64_t connections_accepted() const noexcept;

  private:
    const detail::ServerState& checked(const char* operation) const;
    std::shared_ptr<detail::ServerState> state_;
};

/// Binds `address`, then accepts connections in a task of its own and calls `handler(reader,
/// stream)` for each in a new task (asyncio.start_server). An exception a handler throws goes to
/// the loop's exception handler naming the peer; the other connections are unaffected.
/// Throws: std::system_error "bind to <address>: ..."; std::invalid_argument if `address` is not
/// an IP address or `handler` is empty; std::logic_error if no loop runs on this thread.
Server start_server(ConnectionHandler handler, const Address& address,
                    std::size_t limit = default_stream_limit);
/// The same on a listener bound by the caller (asyncio's start_server(sock=...)), e.g. one bound
/// with ListenOptions::reuse_port for each loop of run_on_threads.
/// Throws: std::invalid_argument if `listener` is not open or `handler` is empty;
/// std::logic_error if no loop runs on this thread.
Server start_server(ConnectionHandler handler, TcpListener listener,
                    std::size_t limit = default_stream_limit);

} // namespace ringlet
