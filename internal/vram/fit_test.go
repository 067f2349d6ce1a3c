package vram

import (
	"slices"
	"testing"
)

func TestFit(t *testing.T) {
	const gb = 1_000_000_000
	planner := ModelSize{"qwen3:14b", 10 * gb}
	exec := ModelSize{"qwen3:4b", 4 * gb}
	small := ModelSize{"gemma3:1b", 1 * gb}
	tests := []struct {
		name              string
		free, headroom    uint64
		models            []ModelSize
		wantFits, wantNot []string
		wantLeft          uint64
		wantAllFit        bool
	}{
		{"all fit", 24 * gb, 2 * gb, []ModelSize{planner, exec, small}, []string{"qwen3:14b", "qwen3:4b", "gemma3:1b"}, []string{}, 7 * gb, true},
		{"exact fit", 16 * gb, 2 * gb, []ModelSize{planner, exec}, []string{"qwen3:14b", "qwen3:4b"}, []string{}, 0, true},
		{"priority kept, smaller later model still fits", 14 * gb, 2 * gb, []ModelSize{planner, exec, small}, []string{"qwen3:14b", "gemma3:1b"}, []string{"qwen3:4b"}, 1 * gb, false},
		{"headroom larger than free", 1 * gb, 2 * gb, []ModelSize{small}, []string{}, []string{"gemma3:1b"}, 0, false},
		{"no models", 8 * gb, 0, nil, []string{}, []string{}, 8 * gb, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Fit(tt.free, tt.headroom, tt.models)
			if !slices.Equal(r.Fits, tt.wantFits) || !slices.Equal(r.DoNotFit, tt.wantNot) {
				t.Errorf("Fit = %v / %v, want %v / %v", r.Fits, r.DoNotFit, tt.wantFits, tt.wantNot)
			}
			wantEq(t, "left", r.LeftBytes, tt.wantLeft)
			wantEq(t, "all fit", r.AllFit(), tt.wantAllFit)
		})
	}
}

func TestTotalFreeBytes(t *testing.T) {
	tests := []struct {
		name   string
		gpus   []GPU
		want   uint64
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"free reported", []GPU{{MemoryFreeBytes: u64(100)}, {MemoryFreeBytes: u64(50)}}, 150, true},
		{"free derived from total and used", []GPU{{MemoryTotalBytes: u64(100), MemoryUsedBytes: u64(30)}}, 70, true},
		{"unknown skipped", []GPU{{MemoryFreeBytes: u64(10)}, {}}, 10, true},
		{"all unknown", []GPU{{}, {MemoryTotalBytes: u64(5)}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := TotalFreeBytes(tt.gpus)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("TotalFreeBytes = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
