package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes a sample: its size, median, quartiles and extremes.
type Summary struct {
	N                   int
	Min, Q1, Median, Q3 float64
	Max                 float64
}

// Summarize computes the summary of xs (quartiles by linear interpolation between order
// statistics, as R's type 7 and numpy's default do). An empty sample gives N = 0 and NaNs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		nan := math.NaN()
		return Summary{Min: nan, Q1: nan, Median: nan, Q3: nan, Max: nan}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{N: len(s), Min: s[0], Q1: quantile(s, 0.25), Median: quantile(s, 0.5), Q3: quantile(s, 0.75), Max: s[len(s)-1]}
}

// quantile of a sorted, non-empty sample.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// Ratios pairs a[i] with b[i] (runs interleaved A B A B, so each pair shared the machine's
// state) and returns a[i]/b[i]; pairs with a zero divisor are left out.
func Ratios(a, b []float64) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// Diffs pairs a[i] with b[i] and returns a[i]-b[i].
func Diffs(a, b []float64) []float64 {
	var out []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		out = append(out, a[i]-b[i])
	}
	return out
}

// Seconds converts durations to seconds.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// FormatSeconds prints a time in seconds with a unit that suits its size.
func FormatSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "n/a"
	case math.Abs(s) < 0.001:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case math.Abs(s) < 1:
		return fmt.Sprintf("%.0f ms", s*1e3)
	default:
		return fmt.Sprintf("%.2f s", s)
	}
}

// SpreadSeconds prints "min–max" of a time sample, or "" for fewer than two values.
func SpreadSeconds(s Summary) string {
	if s.N < 2 {
		return ""
	}
	return FormatSeconds(s.Min) + "–" + FormatSeconds(s.Max)
}

// SpreadRatio prints "min–max" of a ratio sample, or "" for fewer than two values.
func SpreadRatio(s Summary) string {
	if s.N < 2 {
		return ""
	}
	return fmt.Sprintf("%.2f–%.2f", s.Min, s.Max)
}

// SpreadPercent prints "min–max" of a sample of fractions as percentages.
func SpreadPercent(s Summary) string {
	if s.N < 2 {
		return ""
	}
	return fmt.Sprintf("%.1f–%.1f %%", s.Min*100, s.Max*100)
}
