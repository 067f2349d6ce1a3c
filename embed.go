// Package agentd holds files embedded from the repository root.
package agentd

import _ "embed"

// ConfigExample is config.toml.example, printed by `agentd config example`.
//
//go:embed config.toml.example
var ConfigExample string
