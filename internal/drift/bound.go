package drift

import "encoding/json"

// Bound keeps the report's JSON within max bytes, as Lambda's response limit
// requires: past the bound, in-sync results leave Results (last first; Counts
// still has them) and ResultsOmitted says how many. Problems and every other
// outcome stay, so a report of more problems than fit stays over the bound.
func (r *Report) Bound(max int) {
	size := r.size()
	if size <= max {
		return
	}
	keep := make([]bool, len(r.Results))
	for i := range keep {
		keep[i] = true
	}
	omitted := r.ResultsOmitted
	for i := len(r.Results) - 1; i >= 0 && size > max; i-- {
		if r.Results[i].Outcome != InSync {
			continue
		}
		js, err := json.Marshal(r.Results[i])
		if err != nil {
			continue
		}
		keep[i] = false
		omitted++
		size -= len(js) + 1 // the result and its comma
		// results_omitted appears, or gains a digit: measure again.
		if size <= max {
			size = r.sizeWith(keep, omitted)
		}
	}
	kept := make([]Result, 0, len(r.Results))
	for i, res := range r.Results {
		if keep[i] {
			kept = append(kept, res)
		}
	}
	r.Results, r.ResultsOmitted = kept, omitted
}

// size is the report's JSON length.
func (r *Report) size() int {
	js, err := json.Marshal(r)
	if err != nil {
		return 0
	}
	return len(js)
}

// sizeWith is the JSON length of the report keeping only the results kept
// and with omitted as ResultsOmitted.
func (r *Report) sizeWith(keep []bool, omitted int) int {
	c := *r
	c.Results = nil
	for i, res := range r.Results {
		if keep[i] {
			c.Results = append(c.Results, res)
		}
	}
	if c.Results == nil {
		c.Results = []Result{}
	}
	c.ResultsOmitted = omitted
	return c.size()
}
