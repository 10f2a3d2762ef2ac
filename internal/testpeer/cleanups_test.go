package testpeer

import (
	"slices"
	"testing"
)

func TestCleanups(t *testing.T) {
	var c Cleanups
	var order []int
	for i := range 3 {
		c.Add(func() { order = append(order, i) })
	}
	c.Run()
	c.Run() // nothing left
	if !slices.Equal(order, []int{2, 1, 0}) {
		t.Errorf("ran %v, want last added first, once", order)
	}
}
