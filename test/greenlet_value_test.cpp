// Tests of GreenletValue, the any-type value a Greenlet passes: inline and heap storage, copies
// and moves (a moved-from value is empty), greenlet_cast of every form, and the errors.
#include "support.hpp"

#include <memory>
#include <ringlet/greenlet_value.hpp>
#include <string>
#include <utility>
#include <vector>

using ringlet::BadGreenletCast;
using ringlet::greenlet_cast;
using ringlet::GreenletValue;

namespace {

/// Counts its live instances, to check that copies and resets destroy what they should.
struct Counted {
    static inline int live = 0;
    std::string text;
    explicit Counted(std::string t) : text(std::move(t)) { ++live; }
    Counted(const Counted& other) : text(other.text) { ++live; }
    ~Counted() { --live; }
};

struct Point {
    double x, y; // 16 bytes, trivially copyable: stored inline
};

struct Big {
    double x, y, z; // 24 bytes: on the heap, trivially copyable or not
};

} // namespace

TEST_CASE("an empty GreenletValue holds nothing and casts to nothing", "[greenlet]") {
    GreenletValue v;
    CHECK_FALSE(v.has_value());
    CHECK(v.type() == typeid(void));
    CHECK(greenlet_cast<int>(&v) == nullptr);
    CHECK_THROWS_AS(greenlet_cast<int>(v), BadGreenletCast);
    CHECK_THROWS_WITH(greenlet_cast<int>(v), Catch::Contains("holds another type"));
}

TEST_CASE("GreenletValue holds small trivial values and heap values of any copyable type",
          "[greenlet]") {
    GreenletValue i = 42;
    GreenletValue p = Point{1, 2};
    GreenletValue big = Big{4, 5, 6};
    GreenletValue s = std::string(100, 'x'); // not trivially copyable: on the heap
    GreenletValue vec = std::vector<int>{1, 2, 3};
    CHECK(greenlet_cast<int>(i) == 42);
    CHECK(greenlet_cast<Point>(p).y == 2);
    CHECK(greenlet_cast<Big>(big).z == 6);
    GreenletValue big_copy = big;
    greenlet_cast<Big&>(big_copy).z = 7;
    CHECK(greenlet_cast<Big>(big).z == 6); // a deep copy
    CHECK(greenlet_cast<const std::string&>(s).size() == 100);
    CHECK(greenlet_cast<std::vector<int>>(vec) == std::vector<int>{1, 2, 3});
    CHECK(i.type() == typeid(int));
    CHECK(s.type() == typeid(std::string));
    // The wrong type is refused, whatever the storage.
    CHECK_THROWS_AS(greenlet_cast<long>(i), BadGreenletCast);
    CHECK_THROWS_AS(greenlet_cast<std::string>(p), BadGreenletCast);
    CHECK(greenlet_cast<int>(&s) == nullptr);
    // A reference cast reaches the value held.
    greenlet_cast<int&>(i) = 7;
    CHECK(greenlet_cast<int>(i) == 7);
    *greenlet_cast<std::string>(&s) = "changed";
    CHECK(greenlet_cast<std::string>(s) == "changed");
}

TEST_CASE("GreenletValue copies are independent and moves leave the source empty", "[greenlet]") {
    Counted::live = 0;
    {
        GreenletValue a = Counted("a");
        CHECK(Counted::live == 1);
        GreenletValue b = a; // deep copy
        CHECK(Counted::live == 2);
        // Not `= "b"`: at -O3 g++ 12 warns -Wrestrict on it (a false positive, GCC PR 105329).
        greenlet_cast<Counted&>(b).text = std::string("b");
        CHECK(greenlet_cast<const Counted&>(a).text == "a");
        GreenletValue c = std::move(a); // no copy: the pointer moves
        CHECK(Counted::live == 2);
        CHECK_FALSE(a.has_value()); // NOLINT(bugprone-use-after-move): moved-from is empty
        CHECK(greenlet_cast<const Counted&>(c).text == "a");
        c = b; // copy-assign over a value: the old one goes
        CHECK(Counted::live == 2);
        c = 5; // a trivial value replaces a heap one
        CHECK(Counted::live == 1);
        b.reset();
        CHECK(Counted::live == 0);
        CHECK_FALSE(b.has_value());
        GreenletValue self = 3;
        GreenletValue& alias = self; // a self-move that the compiler does not see as one
        self = std::move(alias);
        CHECK(greenlet_cast<int>(self) == 3);
    }
    CHECK(Counted::live == 0);
}

TEST_CASE("greenlet_cast of an rvalue moves the value out", "[greenlet]") {
    GreenletValue v = std::string("payload");
    std::string out = greenlet_cast<std::string>(std::move(v));
    CHECK(out == "payload");
    CHECK(v.type() == typeid(std::string)); // NOLINT(bugprone-use-after-move): keeps its type
}

TEST_CASE("GreenletValue::emplace builds the value in place", "[greenlet]") {
    GreenletValue v = 1;
    std::string& s = v.emplace<std::string>(3, 'z');
    CHECK(s == "zzz");
    CHECK(greenlet_cast<std::string>(v) == "zzz");
    Counted::live = 0;
    v.emplace<Counted>("c");
    CHECK(Counted::live == 1);
    v.emplace<int>(9);
    CHECK(Counted::live == 0);
    CHECK(greenlet_cast<int>(v) == 9);
}

TEST_CASE("a GreenletValue whose copy throws stays empty and leaks nothing", "[greenlet]") {
    struct Throws {
        Throws() = default;
        Throws(const Throws&) { throw std::runtime_error("copy refused"); }
    };
    GreenletValue v = std::make_shared<int>(1); // a heap value with a nothrow copy
    CHECK(greenlet_cast<std::shared_ptr<int>>(v).use_count() == 2);
    GreenletValue t;
    t.emplace<Throws>();
    CHECK_THROWS_WITH(GreenletValue(t), "copy refused");
    GreenletValue target = 4;
    CHECK_THROWS_WITH(target = t, "copy refused");
    CHECK(greenlet_cast<int>(target) == 4); // the assignment failed before touching it
}
