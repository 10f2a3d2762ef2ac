package sorted_test

import (
	"cmp"
	"slices"
	"testing"

	"github.com/thumbprint-drift/thumbprint-drift/internal/sorted"
)

type item struct {
	key  int
	name string
}

// TestOrder: applied to its slice, Order gives what slices.SortStableFunc
// gives, equal keys in their order, for empty, single, sorted, reversed and
// tied inputs.
func TestOrder(t *testing.T) {
	t.Parallel()
	byKey := func(a, b item) int { return cmp.Compare(a.key, b.key) }
	for _, tt := range []struct {
		name string
		in   []item
	}{
		{"empty", nil},
		{"one", []item{{1, "a"}}},
		{"sorted", []item{{1, "a"}, {2, "b"}, {3, "c"}}},
		{"reversed", []item{{3, "c"}, {2, "b"}, {1, "a"}}},
		{"ties keep their order", []item{{2, "x"}, {1, "a"}, {2, "y"}, {1, "b"}, {2, "z"}, {0, "first"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := slices.Clone(tt.in)
			slices.SortStableFunc(want, byKey)
			var got []item
			for _, i := range sorted.Order(len(tt.in), func(i, j int) int { return byKey(tt.in[i], tt.in[j]) }) {
				got = append(got, tt.in[i])
			}
			if !slices.Equal(got, want) {
				t.Errorf("Order over %v gives %v, want %v", tt.in, got, want)
			}
		})
	}
}
