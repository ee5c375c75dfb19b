// ringlet: a C++20 stackless-coroutine framework with an asyncio-style event loop on io_uring.
// This umbrella header only includes the public headers.
#pragma once

#include "ringlet/errors.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/handle.hpp"
#include "ringlet/sleep.hpp"
#include "ringlet/spawn.hpp"
#include "ringlet/task.hpp"
#include "ringlet/thread.hpp"
