//! tokio_tasks: the tokio peer of the task benchmark (tools/bench/run_tasks), on a
//! current-thread runtime. One measurement per process, printed as `RESULT <metric> <value>`:
//!   spawn       4 rounds, on one runtime, of N tokio::spawn() of a trivial future until all
//!               completed: round 1 (fresh memory): spawn_cold_ns, median of rounds 2-4: spawn_ns
//!   sleep       N tasks each in tokio::time::sleep(1 h), spawned in batches of 1,000 with one
//!               yield_now() between, measured once all N sleep: peak RSS growth per task:
//!               sleep_bytes, and how many slept at once: sleep_peak_alive
//!   queue       two tasks ping-ponging through two mpsc::channel(1): queue_switch_ns
//!   greenlet    no analogue: prints nothing
//!   call_later  no DelayQueue (Debian has no tokio-util): N spawned tasks each in
//!               sleep(1 h), 9 in 10 aborted, until the aborted ones are dropped: call_later_ns
//!               (the timer wheel's size is not visible: no call_later_heap_after)
//! Usage: tokio_tasks METRIC N
use std::cell::Cell;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::yield_now;

// One thread: plain thread-local counters.
thread_local! {
    static DONE: Cell<usize> = Cell::new(0);
    static STARTED: Cell<usize> = Cell::new(0);
    static ALIVE: Cell<usize> = Cell::new(0);
}

fn get(counter: &'static std::thread::LocalKey<Cell<usize>>) -> usize {
    counter.with(|c| c.get())
}

fn add(counter: &'static std::thread::LocalKey<Cell<usize>>, delta: isize) -> usize {
    counter.with(|c| {
        let value = (c.get() as isize + delta) as usize;
        c.set(value);
        value
    })
}

/// A VmRSS / VmHWM figure of /proc/self/status, in KiB.
fn status_kib(field: &str) -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no {} in /proc/self/status", field);
}

fn result(metric: &str, value: f64) {
    println!("RESULT {} {:.2}", metric, value);
}

fn per(elapsed: Duration, count: usize) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

/// Round 1 faults fresh memory in; rounds 2-4 reuse what the allocator kept.
const SPAWN_ROUNDS: usize = 4;
/// Tasks spawned before the scheduler runs them: the run queue never holds N not yet started.
const SLEEP_BATCH: usize = 1000;

async fn spawn(n: usize) {
    let mut rounds = Vec::with_capacity(SPAWN_ROUNDS);
    for _ in 0..SPAWN_ROUNDS {
        DONE.with(|c| c.set(0));
        let start = Instant::now();
        for _ in 0..n {
            tokio::spawn(async {
                add(&DONE, 1);
            });
        }
        while get(&DONE) < n {
            yield_now().await;
        }
        rounds.push(per(start.elapsed(), n));
    }
    result("spawn_cold_ns", rounds[0]);
    let mut warm = rounds[1..].to_vec();
    warm.sort_by(|a, b| a.partial_cmp(b).unwrap());
    result("spawn_ns", warm[warm.len() / 2]);
}

async fn sleep(n: usize) {
    let before = status_kib("VmRSS");
    for i in 0..n {
        tokio::spawn(async move {
            add(&STARTED, 1);
            // none wakes while the others start
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        if i % SLEEP_BATCH == SLEEP_BATCH - 1 {
            yield_now().await; // this batch runs up to its first sleep (see main)
        }
    }
    while get(&STARTED) < n {
        yield_now().await;
    }
    result(
        "sleep_bytes",
        (status_kib("VmHWM") - before) as f64 * 1024.0 / n as f64,
    );
    result("sleep_peak_alive", get(&STARTED) as f64);
    // N tasks asleep for an hour: measured, nothing to wait for
    std::process::exit(0);
}

async fn queue(n: usize) {
    let (there_tx, mut there_rx) = mpsc::channel::<usize>(1);
    let (back_tx, mut back_rx) = mpsc::channel::<usize>(1);
    let rounds = (n / 2).max(1);
    let pong = tokio::spawn(async move {
        for _ in 0..rounds {
            let value = there_rx.recv().await.unwrap();
            back_tx.send(value).await.unwrap();
        }
    });
    let start = Instant::now();
    for i in 0..rounds {
        there_tx.send(i).await.unwrap();
        back_rx.recv().await.unwrap();
    }
    let elapsed = start.elapsed();
    pong.await.unwrap();
    result("queue_switch_ns", per(elapsed, 2 * rounds));
}

/// Counts the sleeping tasks still alive: dropped when the task finishes or is aborted.
struct AliveGuard;
impl Drop for AliveGuard {
    fn drop(&mut self) {
        add(&ALIVE, -1);
    }
}

async fn call_later(n: usize) {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(tokio::spawn(async {
            add(&ALIVE, 1);
            let _guard = AliveGuard;
            add(&STARTED, 1);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }));
    }
    while get(&STARTED) < n {
        yield_now().await; // every task has registered its timer
    }
    let mut kept = 0;
    for (i, handle) in handles.iter().enumerate() {
        if i % 10 != 0 {
            handle.abort();
        } else {
            kept += 1;
        }
    }
    while get(&ALIVE) > kept {
        yield_now().await; // the aborted tasks have been dropped
    }
    result("call_later_ns", per(start.elapsed(), n));
}

fn main() {
    const USAGE: &str =
        "usage: tokio_tasks METRIC N   (METRIC: spawn, sleep, queue, greenlet, call_later)";
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("{}", USAGE);
        std::process::exit(2);
    }
    let n: usize = match args[2].parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!(
                "tokio_tasks: N must be a positive integer, got {:?}\n{}",
                args[2], USAGE
            );
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    match args[1].as_str() {
        "spawn" => runtime.block_on(spawn(n)),
        // A spawned task, not block_on's own future: that one is polled again after every 61
        // tasks (event_interval), a spawned task's yield_now() only after the whole batch.
        "sleep" => runtime.block_on(async move { tokio::spawn(sleep(n)).await.unwrap() }),
        "queue" => runtime.block_on(queue(n)),
        "greenlet" => {} // no analogue
        "call_later" => runtime.block_on(call_later(n)),
        other => {
            eprintln!("tokio_tasks: unknown metric {:?}\n{}", other, USAGE);
            std::process::exit(2);
        }
    }
}
