package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentd/agentd/internal/buildinfo"
)

func init() {
	register("version", "print the version, commit and build date", (*Main).version)
}

func (m *Main) version(_ context.Context, args []string) error {
	fs, _ := m.flags("version")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	bi := buildinfo.Get()
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(bi)
	}
	fmt.Fprintf(m.Stdout, "agentd %s", bi.Version)
	if bi.Commit != "" {
		fmt.Fprintf(m.Stdout, " (commit %s", short(bi.Commit))
		if bi.Date != "" {
			fmt.Fprintf(m.Stdout, ", built %s", bi.Date)
		}
		fmt.Fprint(m.Stdout, ")")
	}
	fmt.Fprintf(m.Stdout, " %s\n", bi.Go)
	return nil
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
