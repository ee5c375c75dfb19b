// asio_echo: the Boost.Asio peer of the echo benchmark (issue 6). One io_context on one thread,
// one C++20 coroutine per connection (co_spawn, use_awaitable): async_read_some into a 16 KiB
// buffer, async_write of what arrived, until the peer closes.
// Usage: asio_echo PORT   (listens on 127.0.0.1:PORT)
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket socket) {
    char buffer[16384];
    try {
        for (;;) {
            std::size_t n =
                co_await socket.async_read_some(asio::buffer(buffer), asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(buffer, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // End of stream or a reset: the connection is done.
    }
}

asio::awaitable<void> accept_forever(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: asio_echo PORT\n");
        return 2;
    }
    try {
        asio::io_context context(1); // concurrency hint 1: single-threaded, no locking
        tcp::acceptor acceptor(context);
        tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::atoi(argv[1])));
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(4096);
        asio::co_spawn(context, accept_forever(acceptor), asio::detached);
        std::printf("asio_echo listening on %s\n", argv[1]);
        std::fflush(stdout);
        context.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
