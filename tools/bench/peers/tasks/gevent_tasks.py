#!/usr/bin/env python3
"""gevent_tasks: the gevent peer of the task benchmark (tools/bench/run_tasks).

One measurement per process, printed as `RESULT <metric> <value>` lines:
  spawn       4 rounds, on one hub, of N gevent.spawn() of a trivial function until all
              completed: round 1 (fresh memory): spawn_cold_ns, median of rounds 2-4: spawn_ns
  sleep       N greenlets each in gevent.sleep(3600), spawned in batches of 1,000 with one
              gevent.sleep(0) between, measured once all N sleep: peak RSS growth per greenlet:
              sleep_bytes, and how many slept at once: sleep_peak_alive
  queue       two greenlets ping-ponging through two gevent.queue.Queue(1): queue_switch_ns
  greenlet    greenlet.switch() between two raw greenlets, passing a value: greenlet_switch_ns
  call_later  N hub.loop.timer(3600).start(), 9 in 10 stopped, one hub iteration:
              call_later_ns (libev unlinks a stopped timer from its heap at once, and this
              build of gevent does not expose the heap's size: no call_later_heap_after)

Usage: gevent_tasks.py METRIC N
"""
import argparse
import os
import statistics
import time

import gevent
import gevent.event
import gevent.queue
import greenlet


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
SLEEP_BATCH = 1000  # greenlets spawned before the hub starts them: no N greenlets not yet started


def spawn(n):
    done = 0
    finished = gevent.event.Event()

    def trivial():
        nonlocal done
        done += 1
        if done == n:
            finished.set()

    rounds = []
    for _ in range(SPAWN_ROUNDS):
        done = 0
        finished.clear()
        start = time.perf_counter_ns()
        for _ in range(n):
            gevent.spawn(trivial)
        finished.wait()
        rounds.append((time.perf_counter_ns() - start) / n)
    result("spawn_cold_ns", rounds[0])
    result("spawn_ns", statistics.median(rounds[1:]))


def sleep(n):
    started = 0

    def sleeper():
        nonlocal started
        started += 1
        gevent.sleep(3600)  # none wakes while the others start

    before = status_kib("VmRSS")
    # The hub references each greenlet (start callback, then its timer): no list needed.
    for i in range(n):
        gevent.spawn(sleeper)
        if i % SLEEP_BATCH == SLEEP_BATCH - 1:
            gevent.sleep(0)  # the hub starts this batch, each greenlet up to its first sleep
    while started < n:
        gevent.sleep(0)
    result("sleep_bytes", (status_kib("VmHWM") - before) * 1024 / n)
    result("sleep_peak_alive", started)
    os._exit(0)  # N greenlets asleep for an hour: measured, nothing to wait for


def queue(n):
    there, back = gevent.queue.Queue(1), gevent.queue.Queue(1)
    rounds = max(n // 2, 1)

    def pong():
        for _ in range(rounds):
            back.put(there.get())

    other = gevent.spawn(pong)
    start = time.perf_counter_ns()
    for i in range(rounds):
        there.put(i)
        back.get()
    elapsed = time.perf_counter_ns() - start
    other.join()
    result("queue_switch_ns", elapsed / (2 * rounds))


def greenlet_switch(n):
    rounds = max(n // 2, 1)

    def ping(value):
        switch = pong_greenlet.switch
        for _ in range(rounds):
            value = switch(value)
        return value

    def pong(value):
        switch = ping_greenlet.switch
        while True:
            value = switch(value)

    ping_greenlet = greenlet.greenlet(ping)
    pong_greenlet = greenlet.greenlet(pong)
    start = time.perf_counter_ns()
    ping_greenlet.switch(42)  # returns when ping finishes
    result("greenlet_switch_ns", (time.perf_counter_ns() - start) / (2 * rounds))


def call_later(n):
    loop = gevent.get_hub().loop

    def callback():
        pass

    start = time.perf_counter_ns()
    timers = []
    for _ in range(n):
        timer = loop.timer(3600)
        timer.start(callback)
        timers.append(timer)
    for i, timer in enumerate(timers):
        if i % 10:
            timer.stop()
    gevent.sleep(0)  # one hub iteration
    result("call_later_ns", (time.perf_counter_ns() - start) / n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="gevent_tasks.py METRIC N")
    parser.add_argument("metric", choices=["spawn", "sleep", "queue", "greenlet", "call_later"])
    parser.add_argument("n", type=int)
    args = parser.parse_args()
    if args.n < 1:
        parser.error("N must be >= 1")
    {"spawn": spawn, "sleep": sleep, "queue": queue, "greenlet": greenlet_switch,
     "call_later": call_later}[args.metric](args.n)


if __name__ == "__main__":
    main()
