// Package ollamasim is a faithful stand-in for an Ollama server, used by
// agentd's tests, benchmarks and `agentd demo` where no model weights can
// run. It is never agentd's default backend.
//
// It speaks Ollama's wire protocol with the official
// github.com/ollama/ollama/api types (/api/chat, /api/generate, /api/embed,
// /api/ps, /api/tags, /api/show, /api/pull, /api/version, GET and HEAD /,
// and /v1/chat/completions through Ollama's own openai conversion),
// answers errors with Ollama v0.17.4's exact wording and status codes, and
// reproduces the scheduler behaviour agentd's VRAM policy reacts to: load
// time, eviction of idle models by shortest remaining keep_alive, waiting
// for busy models, partial offload (size_vram < size) when a model is alone
// and too big, out-of-memory errors, parallel slots and a bounded queue that
// answers 503.
//
// Output is deterministic for a Config.Seed: prose for plain chat, a
// minimal valid instance for a JSON Schema `format`, a tool call to the
// first offered tool until a tool result is in the conversation. A Script
// (such as Rules) can dictate replies per scenario, and Faults inject the
// failures agentd's error ladder must handle, the repeated-token abort (a
// stream that ends with no final chunk) among them. A `format` schema
// meets the limits of llama.cpp's grammar converter and parser, with
// Ollama's errors. A differential test holds all of it to a real Ollama.
// Latency follows a per-model
// model (load, prefill and decode tokens/s) whose simulated durations are
// always the ones reported; Config.TimeScale decides how much of it is
// actually slept (0 = none, for fast tests).
//
// Usage:
//
//	sim := ollamasim.New(ollamasim.Config{VRAM: 12e9, NumParallel: 2, Seed: 1})
//	url, err := sim.Start(ctx) // http://127.0.0.1:PORT
//	client := api.NewClient(mustParse(url), http.DefaultClient)
//
// See README.md in this directory for the default model table, the error
// strings and the fault classes.
package ollamasim
