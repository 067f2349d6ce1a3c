// Package depcheck holds no code: its test enforces which way imports may
// point across the module (in the spirit of Tailscale's tstest/deps
// tests), so a production package that starts to import the simulator,
// the scenario fixtures or the benchmarks fails CI instead of shipping
// them in the daemon's dependency graph.
package depcheck
