package handler

import "testing"

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		want   int64
		wantOK bool
	}{
		{"256 MB function", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}, 256 << 20 * 85 / 100, true},
		{"128 MB function", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, 114085068, true},
		{"GOMEMLIMIT set by the operator wins", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "GOMEMLIMIT": "100MiB"}, 0, false},
		{"not in Lambda", nil, 0, false},
		{"garbage size", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, 0, false},
		{"zero size", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MemoryLimit(func(k string) string { return tt.env[k] })
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("MemoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
