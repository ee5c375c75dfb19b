// Tests of ringlet::Greenlet (BasicGreenlet<T>): switching from plain code and between
// greenlets with values, the parent receiving a finished greenlet's value or exception, dead
// greenlets, switching to oneself, destruction of a suspended greenlet, body forms, and the misuse
// of a switch made inside a body (never co_awaited, get()).
#include "support.hpp"

#include <cstdio>
#include <memory>
#include <ringlet/greenlet.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

using ringlet::BasicGreenlet;
using ringlet::Greenlet;
using ringlet::GreenletBody;
using Log = std::vector<std::string>;
using IntGreenlet = BasicGreenlet<int>;
using StrGreenlet = BasicGreenlet<std::string>;

static_assert(!std::is_copy_constructible_v<Greenlet>);
static_assert(!std::is_move_constructible_v<Greenlet>);

/// Records its destruction in `log` (RAII in a greenlet body).
struct Guard {
    Log& log;
    std::string name;
    ~Guard() { log.push_back("~" + name); }
};

/// What `run` writes to file descriptor 2 (the greenlet's warnings go there directly).
template <class F>
std::string stderr_of(F run) {
    std::fflush(stderr);
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    int saved = dup(STDERR_FILENO);
    REQUIRE(saved >= 0);
    REQUIRE(dup2(fileno(file), STDERR_FILENO) >= 0);
    struct Restore { // also when `run` throws: later tests keep their stderr
        int saved;
        ~Restore() {
            std::fflush(stderr);
            dup2(saved, STDERR_FILENO);
            close(saved);
        }
    };
    {
        Restore restore{saved};
        run();
    }
    std::rewind(file);
    std::string text;
    char buffer[256];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;)
        text.append(buffer, n);
    std::fclose(file);
    return text;
}

} // namespace

TEST_CASE("switch_to from plain code runs the greenlet until it switches back to main",
          "[greenlet]") {
    Log log;
    IntGreenlet g([&log](IntGreenlet& self, int first) -> IntGreenlet::Body {
        log.push_back("started with " + std::to_string(first));
        int second = co_await IntGreenlet::main().switch_to(first + 1);
        log.push_back("resumed with " + std::to_string(second));
        CHECK(&IntGreenlet::current() == &self);
        co_return second * 10;
    });
    CHECK_FALSE(g.started());
    CHECK(g.parent() == &IntGreenlet::main());
    int back = g.switch_to(1).get();
    CHECK(back == 2);
    CHECK(g.started());
    CHECK_FALSE(g.dead());
    log.push_back("main got " + std::to_string(back));
    int result = g.switch_to(3).get(); // the body returns: its value goes to its parent, main
    CHECK(result == 30);
    CHECK(g.dead());
    CHECK(log == Log{"started with 1", "main got 2", "resumed with 3"});
    CHECK(&IntGreenlet::current() == &IntGreenlet::main());
    CHECK(IntGreenlet::main().is_main());
    CHECK(IntGreenlet::main().parent() == nullptr);
}

TEST_CASE("greenlets switch to each other with values, in the order of the switches",
          "[greenlet]") {
    Log log;
    IntGreenlet* pong_ptr = nullptr;
    IntGreenlet ping([&](int v) -> IntGreenlet::Body {
        for (int i = 0; i < 3; ++i) {
            log.push_back("ping " + std::to_string(v));
            v = co_await pong_ptr->switch_to(v + 1);
        }
        co_return v;
    });
    IntGreenlet pong([&](int v) -> IntGreenlet::Body {
        for (;;) {
            log.push_back("pong " + std::to_string(v));
            v = co_await ping.switch_to(v * 2);
        }
    });
    pong_ptr = &pong;
    int result = ping.switch_to(1).get();
    // 1 -> pong 2 -> ping 4 -> pong 5 -> ping 10 -> pong 11 -> ping 22, which returns 22.
    CHECK(log == Log{"ping 1", "pong 2", "ping 4", "pong 5", "ping 10", "pong 11"});
    CHECK(result == 22);
    CHECK(ping.dead());
    CHECK_FALSE(pong.dead()); // suspended forever; destroyed at the end of the test
}

TEST_CASE("a finished greenlet's value goes to its parent, by default the greenlet that created "
          "it",
          "[greenlet]") {
    Log log;
    std::unique_ptr<IntGreenlet> child;
    IntGreenlet parent([&](IntGreenlet& self, int) -> IntGreenlet::Body {
        child = std::make_unique<IntGreenlet>([&](int v) -> IntGreenlet::Body {
            log.push_back("child runs");
            co_return v + 100;
        });
        CHECK(child->parent() == &self);
        int from_child = co_await child->switch_to(5);
        log.push_back("parent got " + std::to_string(from_child));
        co_return from_child;
    });
    int result = parent.switch_to(0).get();
    CHECK(result == 105);
    CHECK(child->dead());
    CHECK(log == Log{"child runs", "parent got 105"});
}

TEST_CASE("an explicit parent receives the value, and a dead parent is skipped", "[greenlet]") {
    Log log;
    IntGreenlet b([&](int v) -> IntGreenlet::Body {
        log.push_back("b runs with " + std::to_string(v));
        co_return v + 1;
    });
    // c's parent is b; b finishes first, so c's result goes to b's parent, main.
    IntGreenlet c([&](int v) -> IntGreenlet::Body { co_return v * 3; }, b);
    IntGreenlet a([&](int) -> IntGreenlet::Body {
        int v = co_await b.switch_to(1); // b returns 2 to its parent... which is main, not a
        co_return v;
    });
    CHECK(c.parent() == &b);
    int from_b = a.switch_to(0).get();
    CHECK(from_b == 2); // b's parent is main
    CHECK(b.dead());
    CHECK_FALSE(a.dead());
    CHECK(c.switch_to(7).get() == 21); // b is dead: c's value goes on to main
    CHECK(log == Log{"b runs with 1"});
}

TEST_CASE("an exception of a greenlet's body is raised in its parent", "[greenlet]") {
    SECTION("parent is main: switch_to from plain code throws") {
        IntGreenlet g([](int v) -> IntGreenlet::Body {
            if (v > 0)
                throw std::runtime_error("greenlet failed");
            co_return v;
        });
        CHECK_THROWS_WITH(g.switch_to(1), "greenlet failed");
        CHECK(g.dead());
    }
    SECTION("parent is a greenlet: raised at its pending switch") {
        Log log;
        std::unique_ptr<IntGreenlet> child;
        IntGreenlet parent([&](int) -> IntGreenlet::Body {
            child = std::make_unique<IntGreenlet>([](int) -> IntGreenlet::Body {
                throw std::invalid_argument("child failed");
                co_return 0;
            });
            std::string caught;
            try {
                co_await child->switch_to(0);
            } catch (const std::invalid_argument& e) {
                caught = e.what();
            }
            log.push_back("parent caught " + caught);
            co_return 1;
        });
        CHECK(parent.switch_to(0).get() == 1);
        CHECK(child->dead());
        CHECK(log == Log{"parent caught child failed"});
    }
}

TEST_CASE("switching to a dead greenlet throws std::logic_error", "[greenlet]") {
    IntGreenlet done([](int v) -> IntGreenlet::Body { co_return v; });
    CHECK(done.switch_to(4).get() == 4);
    REQUIRE(done.dead());
    CHECK_THROWS_MATCHES(
        done.switch_to(5), std::logic_error,
        Catch::Matchers::Message("switch_to() a dead ringlet::Greenlet (its body has finished)"));

    std::string inside;
    IntGreenlet other([&](int) -> IntGreenlet::Body {
        try {
            co_await done.switch_to(1);
        } catch (const std::logic_error& e) {
            inside = e.what();
        }
        co_return 9;
    });
    CHECK(other.switch_to(0).get() == 9); // the failed switch did not suspend `other`
    CHECK_THAT(inside, Catch::Contains("dead"));
}

TEST_CASE("switching to oneself returns the value at once", "[greenlet]") {
    IntGreenlet g([](IntGreenlet& self, int v) -> IntGreenlet::Body {
        int same = co_await self.switch_to(v + 1);
        co_return same;
    });
    CHECK(g.switch_to(1).get() == 2);
    // From plain code, switching to main is switching to oneself too.
    CHECK(IntGreenlet::main().switch_to(8).get() == 8);

    // A value that owns memory: moved, then copied, back to the switch (ASan checks the moves).
    StrGreenlet s([](StrGreenlet& self, std::string v) -> StrGreenlet::Body {
        std::string same = co_await self.switch_to(std::move(v) + " moved");
        std::string copy = co_await self.switch_to(same);
        co_return same + ", " + copy;
    });
    CHECK(s.switch_to(std::string(40, 'x')).get() ==
          std::string(40, 'x') + " moved, " + std::string(40, 'x') + " moved");
}

TEST_CASE("a body may co_await a switch of greenlets of another value type: it acts as plain code",
          "[greenlet]") {
    StrGreenlet words([](std::string first) -> StrGreenlet::Body {
        std::string more = co_await StrGreenlet::main().switch_to(first + "!");
        co_return more + "?";
    });
    IntGreenlet g([&](int v) -> IntGreenlet::Body {
        std::string first = co_await words.switch_to(std::string("hi")); // "hi!"
        std::string second = co_await words.switch_to(first);            // "hi!?"
        co_return v + static_cast<int>(second.size());
    });
    CHECK(g.switch_to(1).get() == 5);
    CHECK(words.dead());
    CHECK(g.dead());
}

TEST_CASE("a switch made inside a body and never co_awaited warns, and does not switch",
          "[greenlet]") {
    IntGreenlet other([](int v) -> IntGreenlet::Body { co_return v; });
    IntGreenlet g([&](int) -> IntGreenlet::Body {
        { auto forgotten = other.switch_to(5); }
        co_return 7;
    });
    std::string warning = stderr_of([&] { CHECK(g.switch_to(0).get() == 7); });
    CHECK_THAT(warning, Catch::Contains("switch_to() inside a greenlet was never co_awaited"));
    CHECK_FALSE(other.started());
}

TEST_CASE("get() on a switch made inside a body throws std::logic_error; co_await it instead",
          "[greenlet]") {
    IntGreenlet* g_ptr = nullptr;
    IntGreenlet times_ten([&](int v) -> IntGreenlet::Body {
        for (;;)
            v = co_await g_ptr->switch_to(v * 10);
    });
    std::string error;
    IntGreenlet g([&](int v) -> IntGreenlet::Body {
        auto pending = times_ten.switch_to(std::move(v));
        try {
            (void)std::move(pending).get();
        } catch (const std::logic_error& e) {
            error = e.what();
        }
        co_return co_await std::move(pending);
    });
    g_ptr = &g;
    std::string warning = stderr_of([&] { CHECK(g.switch_to(3).get() == 30); });
    CHECK_THAT(error, Catch::Contains("co_await it instead"));
    CHECK(warning.empty()); // it was co_awaited in the end
}

TEST_CASE("destroying a suspended greenlet destroys its frame: its destructors run", "[greenlet]") {
    Log log;
    {
        IntGreenlet g([&](int) -> IntGreenlet::Body {
            Guard guard{log, "body"};
            log.push_back("suspending");
            co_await IntGreenlet::main().switch_to(0);
            log.push_back("unreachable");
            co_return 0;
        });
        g.switch_to(0);
        CHECK(log == Log{"suspending"});
    }
    CHECK(log == Log{"suspending", "~body"});

    // A greenlet never switched to has no frame: nothing of its body runs.
    log.clear();
    {
        IntGreenlet unused([&](int) -> IntGreenlet::Body { co_return 0; });
    }
    CHECK(log.empty());
}

TEST_CASE("Greenlet passes any copyable value as a GreenletValue, as Python's greenlet",
          "[greenlet]") {
    Greenlet* g2_ptr = nullptr;
    Greenlet g1([&](Greenlet&, ringlet::GreenletValue v) -> GreenletBody {
        CHECK(ringlet::greenlet_cast<std::string>(v) == "hello");
        ringlet::GreenletValue reply = co_await g2_ptr->switch_to(42);
        CHECK(ringlet::greenlet_cast<double>(reply) == 2.5);
        co_return std::string("done");
    });
    Greenlet g2([&](ringlet::GreenletValue v) -> GreenletBody {
        CHECK(ringlet::greenlet_cast<int>(v) == 42);
        co_await g1.switch_to(2.5);
        co_return {};
    });
    g2_ptr = &g2;
    ringlet::GreenletValue result = g1.switch_to(std::string("hello")).get();
    CHECK(ringlet::greenlet_cast<std::string>(result) == "done");
    // switch_to() without a value passes an empty value (Python's switch()).
    Greenlet g3([](ringlet::GreenletValue v) -> GreenletBody { co_return v.has_value(); });
    CHECK(ringlet::greenlet_cast<bool>(g3.switch_to().get()) == false);
}

TEST_CASE("BasicGreenlet<T> moves its values: move-only types are passed without copies",
          "[greenlet]") {
    using PtrGreenlet = BasicGreenlet<std::unique_ptr<int>>;
    PtrGreenlet g([](std::unique_ptr<int> p) -> PtrGreenlet::Body {
        *p += 1;
        std::unique_ptr<int> q = co_await PtrGreenlet::main().switch_to(std::move(p));
        *q += 10;
        co_return std::move(q);
    });
    std::unique_ptr<int> back = g.switch_to(std::make_unique<int>(1)).get();
    CHECK(*back == 2);
    std::unique_ptr<int> last = g.switch_to(std::move(back)).get();
    CHECK(*last == 12);
}

TEST_CASE("a greenlet body may take (self, value), (value) or nothing", "[greenlet]") {
    int calls = 0;
    IntGreenlet with_self([&](IntGreenlet& self, int v) -> IntGreenlet::Body {
        CHECK(&self == &IntGreenlet::current());
        ++calls;
        co_return v;
    });
    IntGreenlet with_value([&](int v) -> IntGreenlet::Body {
        ++calls;
        co_return v;
    });
    IntGreenlet without([&]() -> IntGreenlet::Body {
        ++calls;
        co_return 3;
    });
    CHECK(with_self.switch_to(1).get() == 1);
    CHECK(with_value.switch_to(2).get() == 2);
    CHECK(without.switch_to(99).get() == 3);
    CHECK(calls == 3);
}

TEST_CASE("the SEED_DEMOS greenlet demo runs as in Python: 12, 56, 34, 78", "[greenlet]") {
    Log log;
    Greenlet* gr2 = nullptr;
    Greenlet gr1([&]() -> GreenletBody {
        log.push_back("12");
        co_await gr2->switch_to();
        log.push_back("34");
        co_await gr2->switch_to();
        co_return {};
    });
    Greenlet g2([&]() -> GreenletBody {
        log.push_back("56");
        co_await gr1.switch_to();
        log.push_back("78");
        co_return {};
    });
    gr2 = &g2;
    gr1.switch_to();
    CHECK(log == Log{"12", "56", "34", "78"});
    CHECK(g2.dead());
    CHECK_FALSE(gr1.dead());
}

TEST_CASE("switch_to from a ringlet Task acts as from plain code", "[greenlet]") {
    int result = ringlet::test::run_virtual([]() -> ringlet::Task<int> {
        IntGreenlet g([](int v) -> IntGreenlet::Body {
            int w = co_await IntGreenlet::main().switch_to(v + 1);
            co_return w + 1;
        });
        int first = co_await g.switch_to(1);
        co_await ringlet::sleep(
            std::chrono::seconds(1)); // the greenlet stays suspended across loop iterations
        int second = co_await g.switch_to(first * 10);
        co_return second;
    }());
    CHECK(result == 21);
}

TEST_CASE("switch_to an lvalue sends a copy, switch_to an rvalue moves the value when it switches",
          "[greenlet]") {
    std::vector<std::string> seen;
    StrGreenlet* echo_ptr = nullptr;
    StrGreenlet sender([&](std::string) -> StrGreenlet::Body {
        std::string kept = "kept";
        seen.push_back(co_await echo_ptr->switch_to(kept)); // a copy goes
        seen.push_back(kept);                               // still here
        std::string moved = "moved";
        seen.push_back(co_await echo_ptr->switch_to(std::move(moved)));
        seen.push_back(moved.empty() ? "(moved from)" : moved);
        co_return "end";
    });
    StrGreenlet echo([&](std::string first) -> StrGreenlet::Body {
        std::string v = std::move(first);
        for (;;)
            v = co_await sender.switch_to(v + "!");
    });
    echo_ptr = &echo;
    CHECK(sender.switch_to(std::string()).get() == "end");
    CHECK(seen == std::vector<std::string>{"kept!", "kept", "moved!", "(moved from)"});
}
