package ollamasim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/ollama/ollama/api"
)

// A scripted agent turn against the simulator through the official client.
func Example() {
	ctx := context.Background()
	sim := ollamasim.New(ollamasim.Config{
		VRAM:   8_000_000_000,
		Seed:   1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Script: ollamasim.NewRules(ollamasim.Rule{
			Contains: "capital",
			Replies:  []ollamasim.Reply{{Content: "Paris."}},
		}),
	})
	base, err := sim.Start(ctx)
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	u, _ := url.Parse(base)
	client := api.NewClient(u, http.DefaultClient)

	stream := false
	err = client.Chat(ctx, &api.ChatRequest{
		Model:    "llama3.2:3b",
		Messages: []api.Message{{Role: "user", Content: "What is the capital of France?"}},
		Stream:   &stream,
	}, func(r api.ChatResponse) error {
		fmt.Println(r.Message.Content, r.DoneReason, r.EvalCount, r.LoadDuration)
		return nil
	})
	if err != nil {
		panic(err)
	}
	ps, _ := client.ListRunning(ctx)
	fmt.Println(ps.Models[0].Name, ps.Models[0].SizeVRAM == ps.Models[0].Size)
	fmt.Println(sim.Stats().Models["llama3.2:3b"].Loads)
	// Output:
	// Paris. stop 2 1s
	// llama3.2:3b true
	// 1
}
