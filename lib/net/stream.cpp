// open_connection() and start_server(). A Server is a handle on a shared ServerState that the
// accept task and every connection task also hold, so no task ever outlives what it touches.
// States: serving -> closing (close(): listener closed, accept task ends) -> closed (the accept
// task and every connection task have finished: `all_done` is set). `connections` maps each
// live connection task's id to its handle (for close_clients()); a connection task removes
// itself when it finishes. Everything runs on the loop thread.
#include "ringlet/net/stream.hpp"

#include "ringlet/spawn.hpp"
#include "ringlet/sync/event.hpp"

#include <exception>
#include <sys/socket.h>
#include <system_error>
#include <unordered_map>

namespace ringlet {
namespace detail {

struct ServerState {
    ServerState(ConnectionHandler h, TcpListener l, std::size_t reader_limit)
        : handler(std::move(h)), listener(std::move(l)), address(listener.local_address()),
          limit(reader_limit) {}

    ConnectionHandler handler;
    TcpListener listener;
    Address address;
    std::size_t limit;
    bool closing = false;
    bool accept_done = false;
    std::exception_ptr accept_error;
    std::uint64_t accepted = 0;
    std::unordered_map<std::uint64_t, TaskHandle> connections;
    Event closed;   // close() was called (or accepting failed)
    Event all_done; // closed, and every task of the server finished

    void close() noexcept {
        if (closing)
            return;
        closing = true;
        // Refuse new connections at once (asyncio closes the listening socket here): with an
        // accept in flight the listener's close goes through the ring, and until the kernel has
        // processed it, it would still complete handshakes that nobody accepts.
        if (int fd = listener.native_handle(); fd >= 0)
            ::shutdown(fd, SHUT_RD);
        listener.close(); // a pending accept completes with operation_canceled
        closed.set();
        check_done();
    }
    void check_done() noexcept {
        if (closing && accept_done && connections.empty())
            all_done.set();
    }
};

namespace {

/// Removes a connection task from its server however the task ends.
class ConnectionEntry {
  public:
    ConnectionEntry(ServerState& state, std::uint64_t id) noexcept : state_(state), id_(id) {}
    ConnectionEntry(const ConnectionEntry&) = delete;
    ConnectionEntry& operator=(const ConnectionEntry&) = delete;
    ~ConnectionEntry() {
        state_.connections.erase(id_);
        state_.check_done();
    }

  private:
    ServerState& state_;
    std::uint64_t id_;
};

Task<> serve_connection(std::shared_ptr<ServerState> state, TcpStream stream) {
    ConnectionEntry entry(*state, current_task().id());
    TcpStreamReader reader(stream, state->limit);
    try {
        co_await state->handler(reader, stream);
    } catch (const CancelledError&) {
        // close_clients() or the loop shutting down: the normal way for a handler to stop.
    } catch (...) {
        EventLoop::current().call_exception_handler(
            {"start_server: the handler of the connection from " +
                 stream.peer_address().to_string() + " failed",
             std::current_exception(), current_task().name()});
    }
    stream.close();
}

/// Marks the accept task finished however it ends.
class AcceptDone {
  public:
    explicit AcceptDone(ServerState& state) noexcept : state_(state) {}
    AcceptDone(const AcceptDone&) = delete;
    AcceptDone& operator=(const AcceptDone&) = delete;
    ~AcceptDone() {
        state_.accept_done = true;
        state_.check_done();
    }

  private:
    ServerState& state_;
};

Task<> accept_connections(std::shared_ptr<ServerState> state) {
    AcceptDone done(*state);
    EventLoop& loop = EventLoop::current();
    while (!state->closing) {
        TcpStream stream;
        try {
            stream = co_await state->listener.accept();
        } catch (const std::system_error&) {
            if (!state->closing) { // a failure nobody asked for: serve_forever() rethrows it
                state->accept_error = std::current_exception();
                state->close();
            }
            break;
        }
        ++state->accepted;
        std::string name = "conn " + stream.peer_address().to_string();
        JoinHandle<> handle = spawn(loop, serve_connection(state, std::move(stream)), name);
        state->connections.emplace(handle.id(), handle);
    }
}

Task<> wait_event(std::shared_ptr<ServerState> state, Event ServerState::*event) {
    co_await ((*state).*event).wait();
}

} // namespace
} // namespace detail

Task<Connection> open_connection(std::string host, std::uint16_t port, std::size_t limit) {
    TcpStream stream = co_await TcpStream::connect(std::move(host), port);
    co_return Connection(std::move(stream), limit);
}

Task<Connection> open_connection(Address address, std::size_t limit) {
    TcpStream stream = co_await TcpStream::connect(std::move(address));
    co_return Connection(std::move(stream), limit);
}

namespace {

void check_server_arguments(const ConnectionHandler& handler, std::size_t limit) {
    if (!handler)
        throw std::invalid_argument("ringlet::start_server: empty connection handler");
    if (limit == 0)
        throw std::invalid_argument("ringlet::start_server: limit must be positive");
}

} // namespace

Server start_server(ConnectionHandler handler, const Address& address, std::size_t limit) {
    check_server_arguments(handler, limit);
    EventLoop::current(); // no loop: throw before binding
    return start_server(std::move(handler), TcpListener::bind(address), limit);
}

Server start_server(ConnectionHandler handler, TcpListener listener, std::size_t limit) {
    check_server_arguments(handler, limit);
    if (!listener.is_open())
        throw std::invalid_argument("ringlet::start_server: the listener is not open");
    EventLoop& loop = EventLoop::current();
    auto state =
        std::make_shared<detail::ServerState>(std::move(handler), std::move(listener), limit);
    spawn(loop, detail::accept_connections(state), "server " + state->address.to_string());
    return Server(std::move(state));
}

Server& Server::operator=(Server&& other) noexcept {
    if (this != &other) {
        close();
        close_clients();
        state_ = std::move(other.state_);
    }
    return *this;
}

Server::~Server() {
    close();
    close_clients();
}

const detail::ServerState& Server::checked(const char* operation) const {
    if (!state_)
        throw std::logic_error(std::string("ringlet::Server::") + operation +
                               " on an empty Server");
    return *state_;
}

const Address& Server::local_address() const {
    return checked("local_address").address;
}

void Server::close() noexcept {
    if (state_)
        state_->close();
}

void Server::close_clients() noexcept {
    if (!state_)
        return;
    // cancel() only marks the tasks; they leave `connections` later, when they run.
    for (auto& [id, handle] : state_->connections)
        handle.cancel();
}

Task<> Server::wait_closed() const {
    checked("wait_closed");
    return detail::wait_event(state_, &detail::ServerState::all_done);
}

namespace {
Task<> serve_until_closed(std::shared_ptr<detail::ServerState> state) {
    try {
        co_await state->closed.wait();
    } catch (const CancelledError&) {
        state->close(); // asyncio: cancelling serve_forever() closes the server
        throw;
    }
    if (state->accept_error)
        std::rethrow_exception(state->accept_error);
}
} // namespace

Task<> Server::serve_forever() const {
    checked("serve_forever");
    return serve_until_closed(state_);
}

bool Server::is_serving() const noexcept {
    return state_ && !state_->closing;
}

std::size_t Server::active_connections() const noexcept {
    return state_ ? state_->connections.size() : 0;
}

std::uint64_t Server::connections_accepted() const noexcept {
    return state_ ? state_->accepted : 0;
}

} // namespace ringlet
