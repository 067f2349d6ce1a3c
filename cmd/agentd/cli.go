package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/agentd/agentd/internal/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // something went wrong at run time, or a check failed
	exitUsage   = 2 // bad command line or bad configuration
)

// Main holds what every subcommand needs, injectable for tests.
type Main struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Getenv         func(string) string
}

// NewMain returns a Main wired to the process.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
}

type command struct {
	summary string
	run     func(m *Main, ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(m *Main, ctx context.Context, args []string) error) {
	commands[name] = command{summary, run}
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Run dispatches to a subcommand and maps its error to an exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		m.help()
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(m.Stderr, "agentd: unknown command %q — run `agentd help` for the list\n", name)
		return exitUsage
	}
	err := cmd.run(m, ctx, args)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case isUsage(err):
		fmt.Fprintf(m.Stderr, "agentd %s: %v\n", name, err)
		return exitUsage
	case errors.Is(err, errSilent):
		return exitFailure
	default:
		fmt.Fprintf(m.Stderr, "agentd %s: %v\n", name, err)
		return exitFailure
	}
}

// errSilent fails a command that already printed why.
var errSilent = errors.New("failed")

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u) || errors.Is(err, config.ErrSyntax) || errors.Is(err, config.ErrUnknownKey) || errors.Is(err, config.ErrInvalid)
}

func (m *Main) help() {
	fmt.Fprintln(m.Stdout, "agentd runs plan-and-execute AI agents on local models served by Ollama.")
	fmt.Fprintln(m.Stdout, "\nUsage: agentd <command> [flags]   (no command: serve)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(m.Stdout, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(m.Stdout, "\nRun `agentd <command> -h` for a command's flags.")
}

// flags returns a FlagSet that prints to Stderr and a --config flag.
func (m *Main) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("agentd "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	cfg := fs.String("config", "", "config file (default: $AGENTD_CONFIG, /etc/agentd/config.toml, ./config.toml)")
	return fs, cfg
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// loadConfig loads and validates configuration, honouring the lookup order.
func (m *Main) loadConfig(path string) (*config.Config, string, error) {
	if path == "" {
		path = config.Lookup(m.Getenv, func(p string) bool {
			st, err := os.Stat(p)
			return err == nil && st.Mode().IsRegular()
		})
	}
	return config.Load(path)
}
