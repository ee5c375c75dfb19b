// A program that uses ringlet through pkg-config (build.sh); test/consumers/run.sh
// builds and runs it. Exits 0 only if two spawned tasks ran concurrently and returned the
// right values: the shorter sleep finishes first although it was spawned second.
#include <chrono>
#include <cstdio>
#include <ringlet/ringlet.hpp>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::vector<int> finished;

ringlet::Task<int> delayed(int value, std::chrono::milliseconds delay) {
    co_await ringlet::sleep(delay);
    finished.push_back(value);
    co_return value;
}

ringlet::Task<int> sum() {
    ringlet::JoinHandle<int> slow = ringlet::spawn(delayed(20, 40ms), "slow");
    ringlet::JoinHandle<int> fast = ringlet::spawn(delayed(22, 10ms), "fast");
    int a = co_await slow;
    int b = co_await fast;
    co_return a + b;
}

} // namespace

int main() {
    int result = ringlet::run(sum());
    bool ok = result == 42 && finished == std::vector<int>{22, 20};
    std::printf("consumer-pkgconfig: result %d, finish order %d %d: %s\n", result,
                finished.size() > 0 ? finished[0] : -1, finished.size() > 1 ? finished[1] : -1,
                ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
