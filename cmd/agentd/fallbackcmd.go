package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/agentd/agentd/internal/fallback"
)

func init() {
	register("fallback", "fallback status|enable: the remote provider's state; re-enable one suspended for billing past its reservation", (*Main).fallbackCmd)
}

func (m *Main) fallbackCmd(ctx context.Context, args []string) error {
	fs, cf := m.clientFlagSet("fallback")
	asJSON := fs.Bool("json", false, "print the provider's state as JSON")
	pos, err := parseMixed(fs, args)
	if err != nil {
		return err
	}
	verb := "status"
	if len(pos) > 0 {
		verb = pos[0]
	}
	if len(pos) > 1 || (verb != "status" && verb != "enable") {
		return usagef("usage: agentd fallback [status|enable] [--json]")
	}
	var st fallback.ProviderState
	if verb == "enable" {
		err = m.call(ctx, cf, "POST", "/api/v1/fallback/provider", map[string]bool{"enabled": true}, &st)
	} else {
		err = m.call(ctx, cf, "GET", "/api/v1/fallback/provider", nil, &st)
	}
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return fmt.Errorf("no remote provider: %v — remote fallback is off (fallback.enabled = false)", apiReason(err))
		}
		return err
	}
	if *asJSON {
		return printIndentedJSON(m.Stdout, st)
	}
	if st.Provider == "" {
		fmt.Fprintf(m.Stdout, "no remote provider: %s (fallback.enabled = false)\n", st.Reason)
		return nil
	}
	state := "enabled"
	if st.Suspended {
		state = "SUSPENDED"
	}
	fmt.Fprintf(m.Stdout, "provider   %s at %s, model %s\nstate      %s\nin flight  %d of at most %d\n",
		st.Provider, st.Destination, st.Model, state, st.InFlight, st.MaxInFlight)
	if st.Suspended {
		fmt.Fprintf(m.Stdout, "since      %s (run %s)\nreason     %s\nbilled     $%.6f for a call reserved at $%.6f\n\nno remote call is made until a person re-enables it: agentd fallback enable\n",
			st.SuspendedAt.Local().Format(time.RFC3339), st.RunID, st.Reason, st.ActualUSD, st.ReservedUSD)
	} else if verb == "enable" {
		fmt.Fprintf(m.Stdout, "\nre-enabled by %s: remote calls may be made again, within the caps\n", st.ChangedBy)
	}
	return nil
}
