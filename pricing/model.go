package pricing

import (
	"math/big"
	"math/bits"
	"sort"
	"strconv"

	"github.com/tokenledger/tokenledger"
)

// Model is one entry of the table: its key, provider, where its rates came
// from, and its rates resolved per tier.
type Model struct {
	Key      string
	Provider string
	Source   string
	tiers    []tier // long-context tiers by threshold, highest first; the base tier last
}

// Rate is the rate one bucket of one tier is billed at, and the field of
// the price file it was taken from (another bucket's, on a fallback).
type Rate struct {
	perToken decimal
	Field    string
}

// String returns the rate in dollars per token as a plain decimal.
func (r Rate) String() string { return r.perToken.String() }

// tier is a set of rates that applies when an event's promptTokens exceed
// above (the base tier has above 0 and applies otherwise).
type tier struct {
	above int64
	rates [nBuckets]*Rate // nil: no rate for the bucket, even by fallback

	// The cost is Σ tokens × coef[b] / 10^(scale−9) nano-dollars, where
	// coef[b] is rate b at the tier's common scale (≥ 9).
	scale int
	fast  bool // every coef fits in a uint64 and 10^(scale−9) too
	coef  [nBuckets]uint64
	div   uint64
	big   [nBuckets]*big.Int // the same, for the exact slow path
}

// resolve turns a model's raw rates into tiers, applying the fallbacks of
// the contract: a bucket takes its own rate at the tier, else its own at
// the base tier, else its fallback bucket's (cache → input, reasoning →
// output) at the tier, else at the base tier.
func resolve(raw rawRates) []tier {
	base := raw[0]
	if base == nil {
		base = new([nBuckets]*decimal)
	}
	thresholds := make([]int64, 0, len(raw))
	for above := range raw {
		thresholds = append(thresholds, above)
	}
	if raw[0] == nil {
		thresholds = append(thresholds, 0)
	}
	sort.Slice(thresholds, func(i, j int) bool { return thresholds[i] > thresholds[j] })
	tiers := make([]tier, 0, len(thresholds))
	for _, above := range thresholds {
		own := raw[above]
		if own == nil {
			own = base
		}
		var t tier
		t.above = above
		for b := range nBuckets {
			fb := fallbackOf[b]
			for _, c := range []struct {
				set *[nBuckets]*decimal
				b   bucket
			}{{own, b}, {base, b}, {own, fb}, {base, fb}} {
				if d := c.set[c.b]; d != nil {
					f := bucketFields[c.b]
					if c.set == own && above > 0 {
						f += "_above_" + strconv.FormatInt(above/1000, 10) + "k_tokens"
					}
					t.rates[b] = &Rate{perToken: *d, Field: f}
					break
				}
			}
		}
		t.prepare()
		tiers = append(tiers, t)
	}
	return tiers
}

// prepare computes the tier's coefficients at a common scale.
func (t *tier) prepare() {
	t.scale = 9
	for _, r := range t.rates {
		if r != nil && r.perToken.scale > t.scale {
			t.scale = r.perToken.scale
		}
	}
	t.fast = t.scale-9 <= 19
	if t.fast {
		t.div = 1
		for range t.scale - 9 {
			t.div *= 10
		}
	}
	for b, r := range t.rates {
		if r == nil {
			continue
		}
		t.big[b] = r.perToken.at(t.scale)
		if t.big[b].IsUint64() {
			t.coef[b] = t.big[b].Uint64()
		} else {
			t.fast = false
		}
	}
}

// Usage is an event's tokens split into the buckets the rates price.
type Usage [nBuckets]int64

// UsageOf splits a valid event's tokens into buckets: promptTokens holds
// all input, cached included, completionTokens all output, reasoning
// included (the contract's semantics).
func UsageOf(e *tokenledger.Event) Usage {
	return Usage{
		bInput:      e.PromptTokens - e.CacheReadTokens - e.CacheWriteTokens,
		bCacheRead:  e.CacheReadTokens,
		bCacheWrite: e.CacheWriteTokens,
		bOutput:     e.CompletionTokens - e.ReasoningTokens,
		bReasoning:  e.ReasoningTokens,
	}
}

// tierFor returns the tier that bills an event with prompt input tokens:
// the highest threshold prompt exceeds, else the base tier.
func (m *Model) tierFor(prompt int64) *tier {
	for i := range m.tiers {
		if t := &m.tiers[i]; t.above == 0 || prompt > t.above {
			return t
		}
	}
	return nil
}

// Cost returns the exact cost of u in nano-dollars, rounded half up once,
// for an event whose promptTokens is prompt. ok is false when a bucket
// holding tokens has no rate (the model cannot price this event), and
// tooLarge true when the cost exceeds tokenledger.MaxEventCost. Token
// counts must be from 0 to tokenledger.MaxTokens.
func (m *Model) Cost(u Usage, prompt int64) (cost tokenledger.Nanos, ok, tooLarge bool) {
	t := m.tierFor(prompt)
	if t == nil {
		return 0, false, false
	}
	for b, n := range u {
		if n != 0 && t.rates[b] == nil {
			return 0, false, false
		}
	}
	if t.fast {
		hi, lo := t.fastCost(u)
		if hi != 0 || lo > uint64(tokenledger.MaxEventCost) {
			return 0, true, true
		}
		return tokenledger.Nanos(lo), true, false
	}
	sum := new(big.Int)
	for b, n := range u {
		if n != 0 {
			sum.Add(sum, new(big.Int).Mul(big.NewInt(n), t.big[b]))
		}
	}
	q := roundDiv(sum, pow10(t.scale-9))
	if !q.IsInt64() || q.Int64() > int64(tokenledger.MaxEventCost) {
		return 0, true, true
	}
	return tokenledger.Nanos(q.Int64()), true, false
}

// fastCost is Cost in 128-bit integers, returning the quotient's high and
// low words: each term is below 2^41 × 2^64, so five stay below 2^108.
func (t *tier) fastCost(u Usage) (qhi, qlo uint64) {
	var hi, lo uint64
	for b, n := range u {
		if n == 0 {
			continue
		}
		h, l := bits.Mul64(uint64(n), t.coef[b])
		var c uint64
		lo, c = bits.Add64(lo, l, 0)
		hi += h + c
	}
	qhi = hi / t.div
	qlo, rem := bits.Div64(hi%t.div, lo, t.div)
	if rem >= t.div-rem { // rem ≥ div/2 without overflow: half up
		var c uint64
		qlo, c = bits.Add64(qlo, 1, 0)
		qhi += c
	}
	return qhi, qlo
}

// roundDiv returns n / d rounded half up (n ≥ 0, d > 0).
func roundDiv(n, d *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Lsh(r, 1).Cmp(d) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}
