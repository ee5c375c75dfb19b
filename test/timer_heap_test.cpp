// Unit tests of detail::TimerHeap with dummy runnables: ordering, stable order for equal
// deadlines, lazy O(1) cancellation, generation-checked TimerIds, asyncio's compaction rule and
// the strict "deadline < limit" of pop_due.
#include "support.hpp"

#include <algorithm>
#include <ringlet/detail/timer_heap.hpp>
#include <vector>

namespace {

using ringlet::detail::Runnable;
using ringlet::detail::TimerHeap;
using ringlet::detail::TimerId;
using time_point = TimerHeap::time_point;
using namespace std::chrono_literals;

struct Dummy final : Runnable {
    int id = 0;
    void run() override {}
    std::string describe() const override { return "dummy " + std::to_string(id); }
};

std::vector<Dummy> make_dummies(int n) {
    std::vector<Dummy> out(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        out[static_cast<std::size_t>(i)].id = i;
    return out;
}

/// Pops every entry due before `limit` and returns their ids in order.
std::vector<int> pop_all(TimerHeap& heap, time_point limit) {
    std::vector<int> ids;
    for (int guard = 0; guard < 100'000; ++guard) {
        Runnable* r = heap.pop_due(limit).runnable();
        if (r == nullptr)
            break;
        ids.push_back(static_cast<Dummy*>(r)->id);
    }
    return ids;
}

const time_point t0 = time_point{} + 1000h;
const time_point far_future = t0 + 100'000h;

} // namespace

TEST_CASE("timer heap pops entries in deadline order") {
    auto d = make_dummies(6);
    TimerHeap heap;
    const int offsets_ms[] = {50, 10, 40, 0, 30, 20};
    for (int i = 0; i < 6; ++i)
        heap.schedule(t0 + std::chrono::milliseconds(offsets_ms[i]), &d[i]);
    REQUIRE(heap.size() == 6);
    REQUIRE(heap.next_deadline() == t0);
    CHECK(pop_all(heap, far_future) == std::vector<int>{3, 1, 5, 4, 2, 0});
    CHECK(heap.size() == 0);
    CHECK_FALSE(heap.next_deadline().has_value());
}

TEST_CASE("timer heap keeps scheduling order for equal deadlines") {
    auto d = make_dummies(200);
    TimerHeap heap;
    // Interleave two deadlines so that the heap has to reorder, and check each group's order.
    for (int i = 0; i < 200; ++i)
        heap.schedule(i % 2 == 0 ? t0 + 5ms : t0, &d[i]);
    std::vector<int> expected;
    for (int i = 1; i < 200; i += 2)
        expected.push_back(i);
    for (int i = 0; i < 200; i += 2)
        expected.push_back(i);
    CHECK(pop_all(heap, far_future) == expected);
}

TEST_CASE("timer heap cancels lazily without touching the heap") {
    auto d = make_dummies(3);
    TimerHeap heap;
    TimerId a = heap.schedule(t0, &d[0]);
    heap.schedule(t0 + 1ms, &d[1]);
    TimerId c = heap.schedule(t0 + 2ms, &d[2]);

    CHECK(heap.cancel(c));
    // The entry stays in the heap; only the counters know.
    CHECK(heap.size() == 3);
    CHECK(heap.live() == 2);
    CHECK(heap.cancelled() == 1);
    CHECK_FALSE(heap.cancel(c)); // cancelling twice is a no-op

    CHECK(heap.cancel(a));
    // The cancelled top still shows as the next deadline until housekeeping pops it.
    CHECK(heap.next_deadline() == t0);
    heap.housekeeping();
    CHECK(heap.size() == 2); // the top one went; the cancelled one below stays
    CHECK(heap.next_deadline() == t0 + 1ms);
    CHECK(pop_all(heap, far_future) == std::vector<int>{1});
    CHECK(heap.size() == 0);
    CHECK(heap.cancelled() == 0);
}

TEST_CASE("timer heap pop_due skips cancelled entries at the top") {
    auto d = make_dummies(3);
    TimerHeap heap;
    TimerId a = heap.schedule(t0, &d[0]);
    TimerId b = heap.schedule(t0 + 1ms, &d[1]);
    heap.schedule(t0 + 2ms, &d[2]);
    heap.cancel(a);
    heap.cancel(b);
    CHECK(pop_all(heap, far_future) == std::vector<int>{2});
    CHECK(heap.cancelled() == 0);
}

TEST_CASE("a stale TimerId cancels nothing after its timer fired and its slot was reused") {
    auto d = make_dummies(2);
    TimerHeap heap;
    TimerId first = heap.schedule(t0, &d[0]);
    REQUIRE(pop_all(heap, far_future) == std::vector<int>{0});
    CHECK_FALSE(heap.cancel(first)); // fired: nothing to cancel

    TimerId second = heap.schedule(t0, &d[1]);
    REQUIRE(second.slot == first.slot); // the slot was reused...
    REQUIRE(second.generation != first.generation);
    CHECK_FALSE(heap.cancel(first)); // ...so the old id must not cancel the new timer
    CHECK(heap.live() == 1);
    CHECK(pop_all(heap, far_future) == std::vector<int>{1});
}

TEST_CASE("a stale TimerId cancels nothing after compaction dropped its cancelled entry") {
    auto d = make_dummies(102);
    TimerHeap heap;
    std::vector<TimerId> ids;
    for (int i = 0; i < 101; ++i)
        ids.push_back(heap.schedule(t0 + std::chrono::milliseconds(i), &d[i]));
    for (int i = 0; i < 60; ++i)
        REQUIRE(heap.cancel(ids[static_cast<std::size_t>(i)]));
    heap.housekeeping(); // compacts: 101 > 100 entries, 60 > half cancelled
    REQUIRE(heap.size() == 41);
    TimerId reused = heap.schedule(t0, &d[101]);
    for (int i = 0; i < 60; ++i)
        CHECK_FALSE(heap.cancel(ids[static_cast<std::size_t>(i)]));
    CHECK(heap.live() == 42);
    CHECK(heap.cancel(reused));
}

TEST_CASE("an invalid TimerId cancels nothing") {
    auto d = make_dummies(1);
    TimerHeap heap;
    heap.schedule(t0, &d[0]);
    CHECK_FALSE(heap.cancel(TimerId{}));
    CHECK_FALSE(heap.cancel(TimerId{1234, 0}));
    CHECK(heap.live() == 1);
}

namespace {

/// Schedules `total` timers (deadlines t0, t0+1ms...) and cancels `cancelled` of them, never the
/// first, so that no cancelled entry is at the top of the heap.
void fill(TimerHeap& heap, std::vector<Dummy>& d, int total, int cancelled) {
    std::vector<TimerId> ids;
    for (int i = 0; i < total; ++i)
        ids.push_back(heap.schedule(t0 + std::chrono::milliseconds(i), &d[i]));
    for (int i = 0; i < cancelled; ++i)
        REQUIRE(heap.cancel(ids[static_cast<std::size_t>(total - 1 - i)]));
}

} // namespace

TEST_CASE("timer heap compacts only with more than 100 entries and more than half cancelled") {
    auto d = make_dummies(101);
    static_assert(TimerHeap::compaction_threshold == 100);

    SECTION("101 entries, 51 cancelled: rebuilt without the cancelled ones") {
        TimerHeap heap;
        fill(heap, d, 101, 51);
        heap.housekeeping();
        CHECK(heap.size() == 50);
        CHECK(heap.cancelled() == 0);
        CHECK(heap.live() == 50);
        std::vector<int> expected;
        for (int i = 0; i < 50; ++i)
            expected.push_back(i);
        CHECK(pop_all(heap, far_future) == expected); // order survives the rebuild
    }
    SECTION("101 entries, 50 cancelled: exactly half is not enough") {
        TimerHeap heap;
        fill(heap, d, 101, 50);
        heap.housekeeping();
        CHECK(heap.size() == 101);
        CHECK(heap.cancelled() == 50);
    }
    SECTION("100 entries, 99 cancelled: 100 entries are not more than the threshold") {
        TimerHeap heap;
        fill(heap, d, 100, 99);
        heap.housekeeping();
        CHECK(heap.size() == 100); // the live one is at the top: nothing is popped
        CHECK(heap.live() == 1);
    }
}

TEST_CASE("timer heap pop_due returns only entries strictly before the limit") {
    auto d = make_dummies(2);
    TimerHeap heap;
    heap.schedule(t0, &d[0]);
    heap.schedule(t0 + 1ns, &d[1]);
    CHECK_FALSE(heap.pop_due(t0));
    CHECK_FALSE(heap.pop_due(t0 - 1h));
    CHECK(heap.size() == 2);
    CHECK(heap.pop_due(t0 + 1ns) == &d[0]);
    CHECK_FALSE(heap.pop_due(t0 + 1ns));
    CHECK(heap.pop_due(t0 + 2ns) == &d[1]);
}

TEST_CASE("timer heap clear hands every live target over and forgets the cancelled ones") {
    auto d = make_dummies(4);
    TimerHeap heap;
    heap.schedule(t0, &d[0]);
    TimerId b = heap.schedule(t0, &d[1]);
    heap.schedule(t0, &d[2]);
    heap.schedule(t0, &d[3]);
    heap.cancel(b);
    std::vector<int> handed;
    heap.clear(
        [&](ringlet::detail::Ready r) { handed.push_back(static_cast<Dummy*>(r.runnable())->id); });
    std::sort(handed.begin(), handed.end());
    CHECK(handed == std::vector<int>{0, 2, 3});
    CHECK(heap.size() == 0);
    CHECK(heap.live() == 0);
    CHECK(heap.cancelled() == 0);
    CHECK_FALSE(heap.cancel(b));
}

TEST_CASE("timer heap reuses slots so that schedule and fire in a loop stay bounded") {
    auto d = make_dummies(1);
    TimerHeap heap;
    TimerId previous = heap.schedule(t0, &d[0]);
    REQUIRE(heap.pop_due(far_future) == &d[0]);
    for (int i = 0; i < 1000; ++i) {
        TimerId id = heap.schedule(t0, &d[0]);
        CHECK(id.slot == previous.slot);
        CHECK(heap.pop_due(far_future) == &d[0]);
        previous = id;
    }
    CHECK(heap.size() == 0);
}
