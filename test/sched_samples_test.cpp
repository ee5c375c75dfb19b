// Tests of the scheduling samples as programs (SEED_DEMOS.md sections 3 and 4): spawn_joinall,
// sync_vs_async and queue_pipeline, each run with a small --scale. The printed lines are
// compared exactly; the times they print are checked with tolerances (concurrent sleeps take
// about the longest one, not their sum).
#include "sample_program.hpp"
#include "support.hpp"

#include <sstream>
#include <string>
#include <vector>

namespace {

using ringlet::test::Program;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

/// The number after `prefix` at the start of `line` ("total: 0.123 s ..." -> 0.123); -1 if the
/// line does not start with it.
double seconds_after(const std::string& line, const std::string& prefix) {
    if (line.rfind(prefix, 0) != 0)
        return -1;
    return std::stod(line.substr(prefix.size()));
}

/// Runs the sample to its end and returns its output lines (exit code 0 required).
std::vector<std::string> run_sample(const std::string& name, std::vector<std::string> args) {
    Program program(name, std::move(args));
    std::string output = program.read_rest();
    int code = program.wait();
    INFO(name << " printed:\n" << output);
    REQUIRE(code == 0);
    return lines_of(output);
}

} // namespace

TEST_CASE("spawn_joinall prints gevent's order and takes about the longest sleep, not the sum",
          "[samples][sched]") {
    // --scale 0.05: sleeps of 100 ms, 50 ms and 0.
    std::vector<std::string> lines = run_sample("spawn_joinall", {"--scale", "0.05"});
    REQUIRE(lines.size() == 7);
    std::vector<std::string> steps(lines.begin(), lines.begin() + 6);
    CHECK(steps == std::vector<std::string>{"func1 step 1", "func2 step 1", "func3 step 1",
                                            "func3 step 2", "func2 step 2", "func1 step 2"});
    INFO(lines[6]);
    double total = seconds_after(lines[6], "total: ");
    CHECK(total >= 0.095);
    CHECK(total < 0.145); // the sum of the sleeps would be 0.150
    CHECK_THAT(lines[6], Catch::EndsWith(" s (longest sleep 0.10 s, sum of sleeps 0.15 s)"));
}

TEST_CASE("sync_vs_async prints Task 1..9 one after another, then Task 0..9 in spawn order "
          "after about one sleep",
          "[samples][sched]") {
    // --scale 0.1: each task sleeps 50 ms.
    std::vector<std::string> lines = run_sample("sync_vs_async", {"--scale", "0.1"});
    REQUIRE(lines.size() == 23);
    std::vector<std::string> expected{"Synchronous:"};
    for (int i = 1; i <= 9; ++i)
        expected.push_back("Task " + std::to_string(i) + " done");
    expected.push_back(lines[10]); // the synchronous time, checked below
    expected.push_back("Asynchronous:");
    for (int i = 0; i <= 9; ++i)
        expected.push_back("Task " + std::to_string(i) + " done");
    expected.push_back(lines[22]);
    CHECK(lines == expected);

    INFO(lines[10] << "\n" << lines[22]);
    CHECK_THAT(lines[10], Catch::EndsWith(" s (9 tasks of 0.050 s one after another)"));
    CHECK_THAT(lines[22], Catch::EndsWith(" s (10 tasks of 0.050 s at once)"));
    double sync = seconds_after(lines[10], "synchronous: ");
    double async = seconds_after(lines[22], "asynchronous: ");
    CHECK(sync >= 0.45);
    CHECK(sync < 0.45 + 0.25);
    CHECK(async >= 0.05);
    CHECK(async < 0.05 + 0.07); // about one sleep; two would be 0.100
}

TEST_CASE("queue_pipeline shows the producer waiting on a full queue, and join() after the last "
          "task_done()",
          "[samples][sched]") {
    // --scale 0.1: 10 ms of work per item, six items.
    std::vector<std::string> lines = run_sample("queue_pipeline", {"--scale", "0.1"});
    REQUIRE_FALSE(lines.empty());
    std::string total_line = lines.back();
    lines.pop_back();
    CHECK(lines == std::vector<std::string>{
                       "producer: put item 1",
                       "producer: put item 2",
                       "producer: queue full (2 of 2), waiting to put item 3",
                       "consumer: got item 1",
                       "producer: put item 3",
                       "producer: queue full (2 of 2), waiting to put item 4",
                       "consumer: item 1 done",
                       "consumer: got item 2",
                       "producer: put item 4",
                       "producer: queue full (2 of 2), waiting to put item 5",
                       "consumer: item 2 done",
                       "consumer: got item 3",
                       "producer: put item 5",
                       "producer: queue full (2 of 2), waiting to put item 6",
                       "consumer: item 3 done",
                       "consumer: got item 4",
                       "producer: put item 6",
                       "producer: all 6 items queued, joining the queue",
                       "consumer: item 4 done",
                       "consumer: got item 5",
                       "consumer: item 5 done",
                       "consumer: got item 6",
                       "consumer: item 6 done",
                       "producer: every item was processed",
                       "consumer: cancelled",
                   });
    INFO(total_line);
    CHECK_THAT(total_line, Catch::EndsWith(" s (6 items of 0.010 s of work, one after another)"));
    double total = seconds_after(total_line, "total: ");
    CHECK(total >= 0.06);
    CHECK(total < 0.06 + 0.2);
}

TEST_CASE("the scheduling samples reject a bad --scale with exit code 2", "[samples][sched]") {
    for (const char* name : {"spawn_joinall", "sync_vs_async", "queue_pipeline"}) {
        INFO(name);
        Program program(name, {"--scale", "fast"});
        CHECK(program.wait() == 2);
    }
}
