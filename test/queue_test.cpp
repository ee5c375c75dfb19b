// Tests of Queue<T> and PriorityQueue<T> (sync/queue.hpp): FIFO and priority order,
// back-pressure, the nowait forms and their exceptions, task_done/join, shutdown and
// shutdown(immediate), move-only items, and the cancellation paths -- a getter or putter
// cancelled while waiting, and one cancelled after an item or a slot was handed to it (driven
// step by step with run_once): no item is lost or duplicated.
#include "support.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::CancelledError;
using ringlet::EventLoop;
using ringlet::JoinHandle;
using ringlet::PriorityQueue;
using ringlet::Queue;
using ringlet::QueueEmpty;
using ringlet::QueueFull;
using ringlet::QueueShutDown;
using ringlet::Task;

/// How an awaited task ended: "done", "cancelled", "shut down", or its exception's message.
/// Lifetime: `handle` must outlive the returned Task.
template <class T>
Task<std::string> outcome(JoinHandle<T>& handle) {
    try {
        co_await handle;
        co_return "done";
    } catch (const CancelledError&) {
        co_return "cancelled";
    } catch (const QueueShutDown&) {
        co_return "shut down";
    } catch (const std::exception& e) {
        co_return e.what();
    }
}

/// Runs `loop` step by step until `done()` holds, at most `max_steps` iterations.
template <class Done>
void step_until(EventLoop& loop, Done done, int max_steps = 50) {
    for (int i = 0; i < max_steps && !done(); ++i)
        loop.run_once();
    REQUIRE(done());
}

/// Gets one item into `got`. Lifetime: `q` and `got` outlive the task.
Task<> get_into(Queue<int>& q, std::vector<int>& got) {
    got.push_back(co_await q.get());
}

/// Puts `items` one by one, counting completed puts. Lifetime: `q`, `count` outlive the task.
Task<> put_all(Queue<int>& q, std::vector<int> items, int& count) {
    for (int item : items) {
        co_await q.put(item);
        ++count;
    }
}

/// Orders unique_ptrs by their pointees.
struct PointeeLess {
    bool operator()(const std::unique_ptr<int>& a, const std::unique_ptr<int>& b) const {
        return *a < *b;
    }
};

} // namespace

TEST_CASE("Queue returns items in FIFO order", "[queue]") {
    Queue<int> queue;
    run_virtual([](Queue<int>& q) -> Task<> {
        for (int i = 1; i <= 5; ++i)
            co_await q.put(i);
        CHECK(q.qsize() == 5);
        CHECK_FALSE(q.full()); // unbounded
        std::vector<int> got;
        for (int i = 0; i < 5; ++i)
            got.push_back(co_await q.get());
        CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
        CHECK(q.empty());
    }(queue));
    CHECK(queue.maxsize() == 0);
}

TEST_CASE("put waits while the queue is full until a get frees a slot", "[queue]") {
    Queue<int> queue(2);
    int puts = 0;
    run_virtual([](Queue<int>& q, int& p) -> Task<> {
        auto producer = ringlet::spawn(put_all(q, {10, 20, 30, 40}, p));
        co_await ringlet::yield_now();
        CHECK(p == 2);
        CHECK(q.full());
        CHECK(q.qsize() == 2);
        for (int i = 0; i < 3; ++i)
            co_await ringlet::yield_now();
        CHECK(p == 2); // still blocked
        CHECK(q.get_nowait() == 10);
        CHECK(q.full()); // the freed slot is reserved for the waiting putter
        co_await ringlet::yield_now();
        CHECK(p == 3);
        int item_20 = co_await q.get();
        CHECK(item_20 == 20);
        int item_30 = co_await q.get();
        CHECK(item_30 == 30);
        int item_40 = co_await q.get();
        CHECK(item_40 == 40);
        std::string producer_end = co_await outcome(producer);
        CHECK(producer_end == "done");
        CHECK(p == 4);
        CHECK(q.empty());
    }(queue, puts));
}

TEST_CASE("get waits until an item is put, and the item goes straight to the waiting getter",
          "[queue]") {
    Queue<int> queue;
    std::vector<int> got;
    run_virtual([](Queue<int>& q, std::vector<int>& g) -> Task<> {
        auto getter = ringlet::spawn(get_into(q, g));
        for (int i = 0; i < 3; ++i)
            co_await ringlet::yield_now();
        CHECK_FALSE(getter.done());
        q.put_nowait(7);
        // The item belongs to the woken getter: nobody can overtake it.
        CHECK(q.qsize() == 0);
        CHECK_THROWS_AS(q.get_nowait(), QueueEmpty);
        std::string getter_end = co_await outcome(getter);
        CHECK(getter_end == "done");
    }(queue, got));
    CHECK(got == std::vector<int>{7});
}

TEST_CASE("get_nowait and put_nowait throw QueueEmpty and QueueFull", "[queue]") {
    Queue<int> queue(1);
    CHECK_THROWS_AS(queue.get_nowait(), QueueEmpty);
    queue.put_nowait(1);
    CHECK(queue.full());
    CHECK_THROWS_AS(queue.put_nowait(2), QueueFull);
    CHECK(queue.qsize() == 1);
    CHECK(queue.get_nowait() == 1);
    CHECK_THROWS_AS(queue.get_nowait(), QueueEmpty);
}

TEST_CASE("a negative maxsize throws std::invalid_argument naming it", "[queue]") {
    CHECK_THROWS_AS(Queue<int>(-1), std::invalid_argument);
    CHECK_THROWS_WITH(Queue<int>(-5), Catch::Matchers::Contains("-5"));
    CHECK_THROWS_WITH(PriorityQueue<int>(-2), Catch::Matchers::Contains("-2"));
}

TEST_CASE("join waits until task_done was called for every item put", "[queue]") {
    Queue<int> queue;
    run_virtual([](Queue<int>& q) -> Task<> {
        co_await q.join(); // nothing put: returns at once
        for (int i = 0; i < 3; ++i)
            q.put_nowait(i);
        auto joiner = ringlet::spawn([](Queue<int>& q2) -> Task<> { co_await q2.join(); }(q));
        for (int i = 0; i < 3; ++i) {
            (void)q.get_nowait();
            co_await ringlet::yield_now();
            CHECK_FALSE(joiner.done());
            if (i < 2)
                q.task_done();
        }
        co_await ringlet::yield_now();
        CHECK_FALSE(joiner.done()); // one item is still being processed
        q.task_done();
        std::string joiner_end = co_await outcome(joiner);
        CHECK(joiner_end == "done");
        CHECK_THROWS_AS(q.task_done(), std::logic_error);
    }(queue));
}

TEST_CASE("shutdown makes put raise QueueShutDown and get raise once the queue is empty",
          "[queue]") {
    Queue<int> queue(2);
    Queue<int> empty_queue;
    std::vector<int> got;
    int puts = 0;
    run_virtual([](Queue<int>& q, Queue<int>& eq, std::vector<int>& g, int& p) -> Task<> {
        q.put_nowait(1);
        q.put_nowait(2);
        auto putter = ringlet::spawn(put_all(q, {3}, p)); // blocks: full
        auto getter = ringlet::spawn(get_into(eq, g));    // blocks: empty
        co_await ringlet::yield_now();
        q.shutdown();
        eq.shutdown();
        CHECK(q.is_shut_down());
        std::string putter_end = co_await outcome(putter);
        CHECK(putter_end == "shut down");
        std::string getter_end = co_await outcome(getter);
        CHECK(getter_end == "shut down");
        CHECK_THROWS_AS(q.put_nowait(4), QueueShutDown);
        bool put_threw = false;
        try {
            co_await q.put(5);
        } catch (const QueueShutDown&) {
            put_threw = true;
        }
        CHECK(put_threw);
        // The items already queued can still be taken.
        int item_1 = co_await q.get();
        CHECK(item_1 == 1);
        CHECK(q.get_nowait() == 2);
        CHECK_THROWS_AS(q.get_nowait(), QueueShutDown);
        bool get_threw = false;
        try {
            (void)co_await q.get();
        } catch (const QueueShutDown&) {
            get_threw = true;
        }
        CHECK(get_threw);
    }(queue, empty_queue, got, puts));
    CHECK(puts == 0);
    CHECK(got.empty());
}

TEST_CASE("shutdown(immediate) drops the items, wakes every waiter and releases join", "[queue]") {
    Queue<int> queue;
    Queue<int> empty_queue;
    std::vector<int> got;
    run_virtual([](Queue<int>& q, Queue<int>& eq, std::vector<int>& g) -> Task<> {
        for (int i = 0; i < 3; ++i)
            q.put_nowait(i);
        auto joiner = ringlet::spawn([](Queue<int>& q2) -> Task<> { co_await q2.join(); }(q));
        auto g1 = ringlet::spawn(get_into(eq, g));
        auto g2 = ringlet::spawn(get_into(eq, g));
        co_await ringlet::yield_now();
        CHECK_FALSE(joiner.done());
        q.shutdown(true);
        eq.shutdown(true);
        CHECK(q.qsize() == 0);
        CHECK_THROWS_AS(q.get_nowait(), QueueShutDown);
        std::string joiner_end = co_await outcome(joiner);
        CHECK(joiner_end == "done");
        std::string g1_end = co_await outcome(g1);
        CHECK(g1_end == "shut down");
        std::string g2_end = co_await outcome(g2);
        CHECK(g2_end == "shut down");
        CHECK_THROWS_AS(q.task_done(), std::logic_error); // the dropped items counted as done
    }(queue, empty_queue, got));
    CHECK(got.empty());
}

TEST_CASE("shutdown(immediate) also takes back an item handed to a getter that has not run",
          "[queue]") {
    EventLoop loop(options(true));
    Queue<int> queue;
    std::vector<int> got;
    auto getter = ringlet::spawn(loop, get_into(queue, got));
    loop.run_once();
    queue.put_nowait(5); // handed to the getter, which is now ready
    queue.shutdown(true);
    step_until(loop, [&] { return getter.done(); });
    CHECK(got.empty());
    CHECK_THROWS_AS(getter.result(), QueueShutDown);
    CHECK_THROWS_AS(queue.task_done(), std::logic_error); // the dropped item counted as done
    loop.close();
}

TEST_CASE("PriorityQueue returns the smallest item first", "[queue]") {
    PriorityQueue<int> queue;
    PriorityQueue<int, std::greater<int>> reversed;
    run_virtual([](PriorityQueue<int>& q, PriorityQueue<int, std::greater<int>>& r) -> Task<> {
        for (int v : {5, 1, 4, 2, 3}) {
            co_await q.put(v);
            r.put_nowait(v);
        }
        std::vector<int> got, got_reversed;
        while (!q.empty())
            got.push_back(co_await q.get());
        while (!r.empty())
            got_reversed.push_back(r.get_nowait());
        CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
        CHECK(got_reversed == std::vector<int>{5, 4, 3, 2, 1});
    }(queue, reversed));
}

TEST_CASE("Queue and PriorityQueue carry move-only items", "[queue]") {
    Queue<std::unique_ptr<int>> fifo(1);
    PriorityQueue<std::unique_ptr<int>, PointeeLess> priority;
    run_virtual([](Queue<std::unique_ptr<int>>& f,
                   PriorityQueue<std::unique_ptr<int>, PointeeLess>& p) -> Task<> {
        auto consumer = ringlet::spawn([](Queue<std::unique_ptr<int>>& f2) -> Task<int> {
            int sum = 0;
            for (int i = 0; i < 3; ++i) {
                std::unique_ptr<int> item = co_await f2.get();
                sum += *item;
            }
            co_return sum;
        }(f));
        for (int i = 1; i <= 3; ++i)
            co_await f.put(std::make_unique<int>(i * 10)); // back-pressure: maxsize 1
        int sum = co_await consumer;
        CHECK(sum == 60);

        for (int v : {3, 1, 2})
            co_await p.put(std::make_unique<int>(v));
        std::vector<int> got;
        for (int i = 0; i < 3; ++i)
            got.push_back(*(co_await p.get()));
        CHECK(got == std::vector<int>{1, 2, 3});
    }(fifo, priority));
}

TEST_CASE("a getter cancelled while waiting takes no item", "[queue][cancel]") {
    Queue<int> queue;
    std::vector<int> got;
    run_virtual([](Queue<int>& q, std::vector<int>& g) -> Task<> {
        auto a = ringlet::spawn(get_into(q, g));
        auto b = ringlet::spawn(get_into(q, g));
        co_await ringlet::yield_now();
        CHECK(a.cancel());
        std::string a_end = co_await outcome(a);
        CHECK(a_end == "cancelled");
        q.put_nowait(1);
        std::string b_end = co_await outcome(b);
        CHECK(b_end == "done");
        CHECK(q.empty());
    }(queue, got));
    CHECK(got == std::vector<int>{1});
}

TEST_CASE("a getter cancelled after an item was handed to it passes the item to the next getter",
          "[queue][cancel]") {
    EventLoop loop(options(true));
    Queue<int> queue;
    std::vector<int> got;
    auto a = ringlet::spawn(loop, get_into(queue, got));
    auto b = ringlet::spawn(loop, get_into(queue, got));
    loop.run_once(); // both wait
    CHECK(a.state() == "awaiting Queue get");
    queue.put_nowait(42); // handed to a, which is now ready
    CHECK(a.cancel());    // before a runs
    step_until(loop, [&] { return a.done() && b.done(); });
    CHECK(a.cancelled());
    CHECK_FALSE(b.cancelled());
    CHECK(got == std::vector<int>{42});
    CHECK(queue.empty());
    loop.close();
}

TEST_CASE("a getter cancelled after an item was handed to it puts it back first in line",
          "[queue][cancel]") {
    EventLoop loop(options(true));
    Queue<int> queue(2);
    std::vector<int> got;
    auto a = ringlet::spawn(loop, get_into(queue, got));
    loop.run_once();
    queue.put_nowait(1); // handed to a
    queue.put_nowait(2); // queued behind it
    CHECK(queue.full()); // the handed item still takes its slot until a runs
    CHECK_THROWS_AS(queue.put_nowait(3), QueueFull);
    CHECK(a.cancel());
    step_until(loop, [&] { return a.done(); });
    CHECK(a.cancelled());
    CHECK(got.empty());
    CHECK(queue.qsize() == 2);
    CHECK(queue.get_nowait() == 1);
    CHECK(queue.get_nowait() == 2);
    loop.close();
}

TEST_CASE("a putter cancelled while waiting does not queue its item", "[queue][cancel]") {
    Queue<int> queue(1);
    int puts = 0;
    run_virtual([](Queue<int>& q, int& p) -> Task<> {
        q.put_nowait(1);
        auto putter = ringlet::spawn(put_all(q, {2}, p));
        co_await ringlet::yield_now();
        CHECK(putter.cancel());
        std::string putter_end = co_await outcome(putter);
        CHECK(putter_end == "cancelled");
        CHECK(q.qsize() == 1);
        CHECK(q.get_nowait() == 1);
        CHECK(q.empty());
        CHECK_FALSE(q.full());
    }(queue, puts));
    CHECK(puts == 0);
}

TEST_CASE("a putter cancelled after a slot was reserved for it passes the slot on",
          "[queue][cancel]") {
    EventLoop loop(options(true));
    Queue<int> queue(1);
    int puts_a = 0, puts_b = 0;
    queue.put_nowait(1);
    auto a = ringlet::spawn(loop, put_all(queue, {2}, puts_a));
    auto b = ringlet::spawn(loop, put_all(queue, {3}, puts_b));
    loop.run_once();                // both wait: the queue is full
    CHECK(queue.get_nowait() == 1); // frees the slot, reserved for a
    CHECK(queue.full());
    CHECK(a.cancel()); // before a runs
    step_until(loop, [&] { return a.done() && b.done(); });
    CHECK(a.cancelled());
    CHECK_FALSE(b.cancelled());
    CHECK(puts_a == 0);
    CHECK(puts_b == 1);
    CHECK(queue.qsize() == 1);
    CHECK(queue.get_nowait() == 3);
    CHECK_FALSE(queue.full());
    loop.close();
}

TEST_CASE("a slot reserved for a cancelled putter with nobody behind it is free again",
          "[queue][cancel]") {
    EventLoop loop(options(true));
    Queue<int> queue(1);
    int puts = 0;
    queue.put_nowait(1);
    auto a = ringlet::spawn(loop, put_all(queue, {2}, puts));
    loop.run_once();
    CHECK(queue.get_nowait() == 1);
    CHECK(a.cancel());
    step_until(loop, [&] { return a.done(); });
    CHECK(a.cancelled());
    CHECK(puts == 0);
    CHECK(queue.empty());
    CHECK_FALSE(queue.full());
    queue.put_nowait(9);
    CHECK(queue.get_nowait() == 9);
    loop.close();
}
