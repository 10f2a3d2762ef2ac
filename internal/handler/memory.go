package handler

import (
	"strconv"
	"strings"
)

// MemoryLimit is the soft memory limit for the Go runtime in a Lambda
// function of AWS_LAMBDA_FUNCTION_MEMORY_SIZE megabytes: 85% of it, leaving
// the rest to the runtime's own stacks and buffers, so the garbage collector
// works harder near the limit instead of the function being killed for
// memory. ok is false when GOMEMLIMIT is set (the operator decides) or the
// size is not a positive number (not in Lambda).
func MemoryLimit(getenv func(string) string) (limit int64, ok bool) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(strings.TrimSpace(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return mb << 20 * 85 / 100, true
}
