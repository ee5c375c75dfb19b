// go_tasks: the Go peer of the task benchmark (tools/bench/run_tasks); run with GOMAXPROCS=1.
//
// One measurement per process, printed as `RESULT <metric> <value>` lines:
//
//	spawn       4 rounds, in one process, of N `go f()` of a trivial function until all completed
//	            (WaitGroup): round 1 (fresh memory): spawn_cold_ns, median of rounds 2-4: spawn_ns
//	sleep       N goroutines each in time.Sleep(1 h), started in batches of 1,000 with one
//	            runtime.Gosched() between, measured once all N sleep: peak RSS growth per
//	            goroutine: sleep_bytes, and how many slept at once: sleep_peak_alive
//	queue       two goroutines ping-ponging through two channels of capacity 1: queue_switch_ns
//	greenlet    no analogue: prints nothing
//	call_later  N time.AfterFunc(1 h), 9 in 10 stopped, one runtime.Gosched(): call_later_ns
//	            (the runtime's timer heap is not visible: no call_later_heap_after)
//
// Usage: go_tasks METRIC N
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statusKiB returns a VmRSS / VmHWM figure of /proc/self/status, in KiB.
func statusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, field+":") {
			value, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				panic(err)
			}
			return value
		}
	}
	panic("no " + field + " in /proc/self/status")
}

func result(metric string, value float64) {
	fmt.Printf("RESULT %s %.2f\n", metric, value)
}

const (
	spawnRounds = 4    // round 1 faults fresh memory in; rounds 2-4 reuse what the runtime kept
	sleepBatch  = 1000 // goroutines started before the scheduler runs them: no N not yet started
)

func spawn(n int) {
	var wg sync.WaitGroup
	rounds := make([]float64, spawnRounds)
	for r := range rounds {
		wg.Add(n) // Wait returned: the counter is back at zero
		start := time.Now()
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		rounds[r] = float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	result("spawn_cold_ns", rounds[0])
	warm := rounds[1:]
	sort.Float64s(warm)
	result("spawn_ns", warm[len(warm)/2])
}

func sleep(n int) {
	var started int64
	before := statusKiB("VmRSS")
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			time.Sleep(time.Hour) // none wakes while the others start
		}()
		if i%sleepBatch == sleepBatch-1 {
			runtime.Gosched() // GOMAXPROCS=1: the batch runs to its first sleep (bar a few hundred)
		}
	}
	for atomic.LoadInt64(&started) < int64(n) {
		runtime.Gosched()
	}
	result("sleep_bytes", float64(statusKiB("VmHWM")-before)*1024/float64(n))
	result("sleep_peak_alive", float64(atomic.LoadInt64(&started)))
	os.Exit(0) // N goroutines asleep for an hour: measured, nothing to wait for
}

func queue(n int) {
	there, back := make(chan int, 1), make(chan int, 1)
	rounds := n / 2
	if rounds < 1 {
		rounds = 1
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < rounds; i++ {
			back <- <-there
		}
		close(done)
	}()
	start := time.Now()
	for i := 0; i < rounds; i++ {
		there <- i
		<-back
	}
	elapsed := time.Since(start)
	<-done
	result("queue_switch_ns", float64(elapsed.Nanoseconds())/float64(2*rounds))
}

func callLater(n int) {
	callback := func() {}
	start := time.Now()
	timers := make([]*time.Timer, n)
	for i := range timers {
		timers[i] = time.AfterFunc(time.Hour, callback)
	}
	for i, timer := range timers {
		if i%10 != 0 {
			timer.Stop()
		}
	}
	runtime.Gosched()
	result("call_later_ns", float64(time.Since(start).Nanoseconds())/float64(n))
}

func main() {
	usage := "usage: go_tasks METRIC N   (METRIC: spawn, sleep, queue, greenlet, call_later)"
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "go_tasks: N must be a positive integer, got %q\n%s\n", os.Args[2], usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "spawn":
		spawn(n)
	case "sleep":
		sleep(n)
	case "queue":
		queue(n)
	case "greenlet":
		// goroutines have no explicit switch: nothing to measure
	case "call_later":
		callLater(n)
	default:
		fmt.Fprintf(os.Stderr, "go_tasks: unknown metric %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
}
