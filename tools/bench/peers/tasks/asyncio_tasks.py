#!/usr/bin/env python3
"""asyncio_tasks: the asyncio and uvloop peers of the task benchmark (tools/bench/run_tasks).

One measurement per process, printed as `RESULT <metric> <value>` lines:
  spawn       4 rounds, on one loop, of N loop.create_task() of a trivial coroutine until all
              completed: round 1 (fresh memory): spawn_cold_ns, median of rounds 2-4: spawn_ns
  sleep       N tasks each in asyncio.sleep(3600), created in batches of 1,000 with one
              sleep(0) between, measured once all N sleep: peak RSS growth per task:
              sleep_bytes, and how many slept at once: sleep_peak_alive
  queue       two tasks ping-ponging through two asyncio.Queue(1): queue_switch_ns
  greenlet    no greenlets in asyncio: a generator's send() instead, two switches per send
              (into the generator and back): greenlet_switch_ns
  call_later  N loop.call_later(3600), 9 in 10 cancelled, one loop iteration: call_later_ns,
              and len(loop._scheduled) after it: call_later_heap_after (asyncio only)

Usage: asyncio_tasks.py METRIC N [--uvloop]
"""
import argparse
import asyncio
import os
import statistics
import time


def status_kib(field):
    """A VmRSS / VmHWM figure of /proc/self/status, in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def result(metric, value):
    print(f"RESULT {metric} {value:.2f}", flush=True)


SPAWN_ROUNDS = 4  # round 1 faults fresh memory in; rounds 2-4 reuse what the allocator kept
SLEEP_BATCH = 1000  # sleepers created before the loop runs them: no N tasks not yet started


async def spawn(n):
    loop = asyncio.get_running_loop()
    done = 0

    async def trivial():
        nonlocal done
        done += 1

    rounds = []
    for _ in range(SPAWN_ROUNDS):
        done = 0
        start = time.perf_counter_ns()
        for _ in range(n):
            loop.create_task(trivial())
        while done < n:
            await asyncio.sleep(0)
        rounds.append((time.perf_counter_ns() - start) / n)
    result("spawn_cold_ns", rounds[0])
    result("spawn_ns", statistics.median(rounds[1:]))


async def sleep(n):
    loop = asyncio.get_running_loop()
    started = 0

    async def sleeper():
        nonlocal started
        started += 1
        await asyncio.sleep(3600)  # none wakes while the others start

    before = status_kib("VmRSS")
    # Pending tasks are referenced by the loop (ready queue, then their timer): no list needed.
    for i in range(n):
        loop.create_task(sleeper())
        if i % SLEEP_BATCH == SLEEP_BATCH - 1:
            await asyncio.sleep(0)  # one loop iteration: this batch runs to its first sleep
    while started < n:
        await asyncio.sleep(0)
    result("sleep_bytes", (status_kib("VmHWM") - before) * 1024 / n)
    result("sleep_peak_alive", started)
    os._exit(0)  # N tasks asleep for an hour: measured, nothing to wait for


async def queue(n):
    there, back = asyncio.Queue(1), asyncio.Queue(1)
    rounds = max(n // 2, 1)

    async def pong():
        for _ in range(rounds):
            await back.put(await there.get())

    task = asyncio.get_running_loop().create_task(pong())
    start = time.perf_counter_ns()
    for i in range(rounds):
        await there.put(i)
        await back.get()
    elapsed = time.perf_counter_ns() - start
    await task
    result("queue_switch_ns", elapsed / (2 * rounds))


def generator_send(n):
    def echo():
        value = yield
        while True:
            value = yield value

    gen = echo()
    next(gen)
    send = gen.send
    sends = max(n // 2, 1)
    start = time.perf_counter_ns()
    for i in range(sends):
        send(i)
    result("greenlet_switch_ns", (time.perf_counter_ns() - start) / (2 * sends))


async def call_later(n, uvloop):
    loop = asyncio.get_running_loop()

    def callback():
        pass

    start = time.perf_counter_ns()
    handles = [loop.call_later(3600, callback) for _ in range(n)]
    for i, handle in enumerate(handles):
        if i % 10:
            handle.cancel()
    await asyncio.sleep(0)  # one iteration: asyncio purges cancelled entries there
    result("call_later_ns", (time.perf_counter_ns() - start) / n)
    if not uvloop:  # libuv keeps its timer heap to itself (it unlinks a timer on cancel)
        result("call_later_heap_after", len(loop._scheduled))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="asyncio_tasks.py METRIC N [--uvloop]")
    parser.add_argument("metric", choices=["spawn", "sleep", "queue", "greenlet", "call_later"])
    parser.add_argument("n", type=int)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("N must be >= 1")
    if args.uvloop:
        import uvloop

        uvloop.install()
    if args.metric == "greenlet":
        generator_send(args.n)
    elif args.metric == "call_later":
        asyncio.run(call_later(args.n, args.uvloop))
    else:
        asyncio.run({"spawn": spawn, "sleep": sleep, "queue": queue}[args.metric](args.n))


if __name__ == "__main__":
    main()
