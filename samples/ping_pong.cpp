// ping_pong: greenlet's explicit switching demo (SEED_DEMOS.md section 2) with ringlet::Greenlet.
// main switches to gr1; gr1 and gr2 then hand control to each other by symmetric transfer.
// Prints 12, 56, 34, 78: gr2 returns after 78, which gives control back to its parent, main;
// gr1 stays suspended after 34 and is destroyed at the end of main.
#include <fmt/core.h>
#include <ringlet/greenlet.hpp>

namespace {

ringlet::Greenlet* gr1 = nullptr;
ringlet::Greenlet* gr2 = nullptr;

ringlet::GreenletBody test1() {
    fmt::print("12\n");
    co_await gr2->switch_to();
    fmt::print("34\n");
    co_await gr2->switch_to();
    co_return {};
}

ringlet::GreenletBody test2() {
    fmt::print("56\n");
    co_await gr1->switch_to();
    fmt::print("78\n");
    co_return {};
}

} // namespace

int main() {
    ringlet::Greenlet g1(test1);
    ringlet::Greenlet g2(test2);
    gr1 = &g1;
    gr2 = &g2;
    g1.switch_to();
}
