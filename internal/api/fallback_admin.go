package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/agentd/agentd/internal/fallback"
)

// ProviderAdmin shows the remote provider's state and lets a person lift a
// suspension: a provider that billed past a call's reservation is
// suspended by the gate and stays so, across restarts, until someone has
// looked. *fallback.Gate implements it.
//
// It is found on Deps.Budgets (the remote budget's owner): a Budgets that
// also implements ProviderAdmin serves GET/POST /api/v1/fallback/provider.
// Without one, GET answers a state with no provider (like /api/v1/link's
// "disabled", so the dashboard can always ask) and POST 404 not_configured.
type ProviderAdmin interface {
	ProviderState() (fallback.ProviderState, error)
	EnableProvider(ctx context.Context, by string) (fallback.ProviderState, error)
}

var _ ProviderAdmin = (*fallback.Gate)(nil)

// providerBody is POST /api/v1/fallback/provider.
type providerBody struct {
	Enabled *bool `json:"enabled"`
}

// registerFallbackAdmin adds GET and POST /api/v1/fallback/provider.
func (rt *routes) registerFallbackAdmin() {
	rt.s.Handle("GET /api/v1/fallback/provider", http.HandlerFunc(rt.providerState))
	rt.s.Handle("POST /api/v1/fallback/provider", http.HandlerFunc(rt.setProvider))
}

func (rt *routes) providerAdmin(w http.ResponseWriter) (ProviderAdmin, bool) {
	admin, ok := rt.d.Budgets.(ProviderAdmin)
	if !ok || admin == nil {
		WriteError(w, http.StatusNotFound, "not_configured", "the remote provider is not available: remote fallback is not configured")
		return nil, false
	}
	return admin, true
}

func (rt *routes) providerError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, fallback.ErrDisabled) {
		WriteError(w, http.StatusNotFound, "not_configured", what+": "+err.Error())
		return
	}
	rt.engineError(w, r, what, err)
}

// notConfigured is the provider state when remote fallback is off.
var notConfigured = fallback.ProviderState{Reason: "remote fallback is not configured: nothing leaves this machine"}

// providerState is GET /api/v1/fallback/provider.
func (rt *routes) providerState(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.d.Budgets.(ProviderAdmin)
	if !ok || admin == nil {
		WriteJSON(w, http.StatusOK, notConfigured)
		return
	}
	st, err := admin.ProviderState()
	if errors.Is(err, fallback.ErrDisabled) {
		WriteJSON(w, http.StatusOK, notConfigured)
		return
	}
	if err != nil {
		rt.engineError(w, r, "read remote provider state", err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

// setProvider is POST /api/v1/fallback/provider {"enabled": true}: lift a
// suspension. Suspending is agentd's own act (on an overbill); an operator
// who wants no remote calls sets fallback.enabled = false.
func (rt *routes) setProvider(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.providerAdmin(w)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var b providerBody
	if !decodeJSON(w, r, &b) {
		return
	}
	if b.Enabled == nil || !*b.Enabled {
		WriteError(w, http.StatusBadRequest, "bad_enabled", `send {"enabled": true} to re-enable a suspended provider; to stop remote calls altogether set fallback.enabled = false in the config`)
		return
	}
	st, err := admin.EnableProvider(r.Context(), by(r))
	if err != nil {
		rt.providerError(w, r, "re-enable remote provider", err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}
