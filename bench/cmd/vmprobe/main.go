//go:build linux

// Command vmprobe measures two costs of the machine that bound what a server
// can do on it, so that numbers in docs/performance.md that depend on them can
// be checked on another machine:
//
//   - the first touch of a page of fresh anonymous memory (a minor page
//     fault), once on new memory and once after MADV_DONTNEED gave it back;
//   - the hand-off of a value to a parked goroutine through a channel (the
//     wake-up every goroutine hand-off on a request's path pays when the
//     other side is idle).
//
// It measures the machine, not cairn.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 256, "MiB of anonymous memory to touch")
	rounds := flag.Int("handoffs", 2000, "channel hand-offs to time")
	pause := flag.Duration("pause", 200*time.Microsecond, "pause before each hand-off, so the receiver parks")
	flag.Parse()

	perPage, again, err := pageFaults(*mib << 20)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmprobe:", err)
		os.Exit(1)
	}
	fmt.Printf("first touch of fresh memory: %.2f µs per 4 KiB page (%d MiB)\n", perPage, *mib)
	fmt.Printf("touch after MADV_DONTNEED:   %.2f µs per 4 KiB page\n", again)
	fmt.Printf("hand-off to a parked goroutine: %.1f µs (mean of %d, GOMAXPROCS %d)\n",
		handoff(*rounds, *pause), *rounds, runtime.GOMAXPROCS(0))
}

// pageFaults maps n bytes, writes one byte per page twice (the second time
// after releasing the pages) and returns the time per page of each pass.
func pageFaults(n int) (first, again float64, err error) {
	const page = 4096
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, 0, fmt.Errorf("mmap: %w", err)
	}
	defer syscall.Munmap(b)
	touch := func() float64 {
		start := time.Now()
		for i := 0; i < n; i += page {
			b[i] = 1
		}
		return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(n/page)
	}
	first = touch()
	if err := syscall.Madvise(b, syscall.MADV_DONTNEED); err != nil {
		return 0, 0, fmt.Errorf("madvise: %w", err)
	}
	return first, touch(), nil
}

// handoff times sending a timestamp to a goroutine parked on a channel and
// returns the mean one-way delay in microseconds.
func handoff(rounds int, pause time.Duration) float64 {
	ping, pong := make(chan time.Time), make(chan time.Duration)
	go func() {
		for t := range ping {
			pong <- time.Since(t)
		}
	}()
	defer close(ping)
	var sum time.Duration
	for range rounds {
		time.Sleep(pause)
		ping <- time.Now()
		sum += <-pong
	}
	return float64(sum.Nanoseconds()) / 1e3 / float64(rounds)
}
