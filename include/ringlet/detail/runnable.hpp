// The unit the ready queue holds: something the loop's dispatch step runs once.
// Lifetime: whoever enqueues a Runnable guarantees it outlives its run().
#pragma once

#include <string>

namespace ringlet::detail {

class Runnable {
  public:
    virtual void run() = 0;
    /// For debug messages ("task 'worker-3'", "callback").
    virtual std::string describe() const = 0;
    /// The loop closed before running it (callbacks drop their reference here).
    virtual void abandon() noexcept {}

  protected:
    ~Runnable() = default;
};

} // namespace ringlet::detail
