// Unit tests of detail::ReadyQueue: FIFO order across growth and wrap-around of its ring buffer.
#include "support.hpp"

#include <ringlet/detail/ready_queue.hpp>
#include <vector>

namespace {

using ringlet::detail::ReadyQueue;
using ringlet::detail::Runnable;

struct Dummy final : Runnable {
    std::size_t id = 0;
    void run() override {}
    std::string describe() const override { return "dummy"; }
};

std::vector<Dummy> make_dummies(std::size_t n) {
    std::vector<Dummy> out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i].id = i;
    return out;
}

std::size_t id_of(ringlet::detail::Ready r) {
    return static_cast<Dummy*>(r.runnable())->id;
}

} // namespace

TEST_CASE("ready queue starts empty") {
    ReadyQueue q;
    CHECK(q.empty());
    CHECK(q.size() == 0);
    CHECK(q.capacity() > 0);
}

TEST_CASE("ready queue is FIFO across growth") {
    constexpr std::size_t n = 10'000;
    auto d = make_dummies(n);
    ReadyQueue q;
    std::size_t initial_capacity = q.capacity();
    for (std::size_t i = 0; i < n; ++i)
        q.push(&d[i]);
    CHECK(q.size() == n);
    CHECK(q.capacity() >= n);
    CHECK(q.capacity() > initial_capacity);
    std::size_t out_of_order = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (id_of(q.pop()) != i)
            ++out_of_order;
    CHECK(out_of_order == 0);
    CHECK(q.empty());
}

TEST_CASE("ready queue stays FIFO when pushes and pops interleave past its capacity") {
    // Three pushes for two pops: the head keeps moving, so the buffer wraps around many times
    // and grows while wrapped (head in the middle of the buffer).
    constexpr std::size_t n = 10'000;
    auto d = make_dummies(n);
    ReadyQueue q;
    std::size_t initial_capacity = q.capacity();
    std::size_t pushed = 0;
    std::size_t next_expected = 0;
    std::size_t out_of_order = 0;
    while (pushed < n) {
        for (int k = 0; k < 3 && pushed < n; ++k)
            q.push(&d[pushed++]);
        for (int k = 0; k < 2; ++k)
            if (id_of(q.pop()) != next_expected++)
                ++out_of_order;
        CHECK(q.size() == pushed - next_expected);
    }
    while (!q.empty())
        if (id_of(q.pop()) != next_expected++)
            ++out_of_order;
    CHECK(out_of_order == 0);
    CHECK(next_expected == n);
    CHECK(q.capacity() > initial_capacity); // it did grow while wrapped
}

TEST_CASE("ready queue does not grow when it is drained as fast as it is filled") {
    auto d = make_dummies(1);
    ReadyQueue q;
    std::size_t capacity = q.capacity();
    for (std::size_t i = 0; i < 10'000; ++i) {
        q.push(&d[0]);
        REQUIRE(q.pop() == &d[0]);
    }
    CHECK(q.capacity() == capacity);
    CHECK(q.empty());
}
