package loadgen

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets: exact below 128 ns,
// then 64 buckets per power of two (within 1.6 %). It holds any number of
// samples in 30 KB, so a long run keeps no per-request slice.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // buckets per power of two
	histBuckets = 2*histSub + (64-histSubBits-1)*histSub
)

// bucketOf returns the bucket of v nanoseconds.
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	l := bits.Len64(v)              // ≥ histSubBits+2
	m := v >> (l - histSubBits - 1) // in [histSub, 2*histSub)
	return 2*histSub + (l-histSubBits-2)*histSub + int(m-histSub)
}

// upperOf returns the largest value in bucket i.
func upperOf(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	i -= 2 * histSub
	l := i/histSub + histSubBits + 2
	m := uint64(i%histSub + histSub)
	shift := l - histSubBits - 1
	return (m+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a share q of the samples fall
// (the bucket's upper bound, never more than the maximum); 0 without
// samples.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upperOf(i)), h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
