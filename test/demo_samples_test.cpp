// Tests of the SEED_DEMOS samples as programs: producer_consumer (section 1, yield/send) and
// ping_pong (section 2, greenlet switching) must print exactly what the Python demos print.
#include "sample_program.hpp"
#include "support.hpp"

#include <string>

namespace {

struct SampleRun {
    int exit_code;
    std::string output;
};

SampleRun run_sample(const std::string& name) {
    ringlet::test::Program program(name);
    std::string output = program.read_rest();
    return {program.wait(), std::move(output)};
}

} // namespace

TEST_CASE("producer_consumer prints the baozi demo's lines in Python's order",
          "[demo_samples][samples]") {
    auto run = run_sample("producer_consumer");
    CHECK(run.exit_code == 0);
    std::string expected = "--->starting eating baozi...\n"
                           "--->starting eating baozi...\n";
    for (int n = 1; n <= 5; ++n) {
        const std::string baozi = std::to_string(n) + "\n";
        expected += "[c1] is eating baozi " + baozi;
        expected += "[c2] is eating baozi " + baozi;
        expected += "[producer] is making baozi " + baozi;
    }
    CHECK(run.output == expected);
}

TEST_CASE("ping_pong prints 12, 56, 34, 78 as greenlet's switching demo",
          "[demo_samples][samples]") {
    auto run = run_sample("ping_pong");
    CHECK(run.exit_code == 0);
    CHECK(run.output == "12\n56\n34\n78\n");
}
