// producer_consumer: the "baozi" demo of Python's yield/send (SEED_DEMOS.md section 1) with
// ringlet::Generator. Each consumer is a generator that yields nothing and receives a baozi
// number at every `co_yield`; the producer primes both with next(), then feeds them with send().
#include <fmt/core.h>
#include <ringlet/generator.hpp>
#include <string>
#include <variant>

namespace {

// Yields std::monostate (Python's bare `yield` yields None) and receives an int per send().
ringlet::Generator<std::monostate, int> consumer(std::string name) {
    fmt::print("--->starting eating baozi...\n");
    for (;;) {
        int new_baozi = co_yield {};
        fmt::print("[{}] is eating baozi {}\n", name, new_baozi);
    }
}

void producer(ringlet::Generator<std::monostate, int>& con,
              ringlet::Generator<std::monostate, int>& con2) {
    con.next(); // prime: run each consumer to its first co_yield
    con2.next();
    int n = 0;
    while (n < 5) {
        n += 1;
        con.send(n);
        con2.send(n);
        fmt::print("[producer] is making baozi {}\n", n);
    }
}

} // namespace

int main() {
    auto con = consumer("c1");
    auto con2 = consumer("c2");
    producer(con, con2);
}
