// Package sorted sorts slices of any element type through one
// instantiation of the standard library's sort: that of []int.
//
// slices.SortFunc and slices.SortStableFunc are generic: each element type
// of a distinct shape (every struct type) gets its own copy of the whole
// sort, 4 to 9 KB of machine code and as much of tables each, in a
// function binary whose size is bounded (issue 21). Sorting the indexes
// instead costs one slice of ints and a copy, which for the few hundred
// elements of a message or a report is nothing beside the calls that built
// them.
package sorted

import "slices"

// Order is the stable order of n elements by cmp over their indexes:
// out[k] is the index of the element that goes k-th, equal elements in
// their order, as slices.SortStableFunc leaves them.
func Order(n int, cmp func(i, j int) int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, cmp)
	return idx
}
