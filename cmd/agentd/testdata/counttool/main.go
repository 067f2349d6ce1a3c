// Command counttool is a command tool for agentd's crash tests: it appends
// one line per invocation (tool, job, step, pid) to a log file before doing
// anything else, then sleeps so that a kill of the daemon lands mid-step,
// then answers with JSON. The test reads the log to prove that a
// non-idempotent tool never ran twice for the same run and step.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	logPath := flag.String("log", "", "file to append invocations to")
	name := flag.String("name", "", "the tool's name, as recorded")
	sleep := flag.Duration("sleep", 200*time.Millisecond, "how long one call takes")
	flag.Parse()
	var args struct {
		Job  string `json:"job"`
		Step string `json:"step"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&args); err != nil {
		fmt.Fprintln(os.Stderr, "counttool: arguments are not JSON:", err)
		os.Exit(2)
	}
	line, _ := json.Marshal(map[string]any{"tool": *name, "job": args.Job, "step": args.Step, "pid": os.Getpid(),
		"at": time.Now().UnixMilli()})
	f, err := os.OpenFile(*logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "counttool:", err)
		os.Exit(1)
	}
	// One write of a short line with O_APPEND: concurrent calls never
	// interleave.
	if _, err := f.Write(append(line, '\n')); err != nil {
		fmt.Fprintln(os.Stderr, "counttool:", err)
		os.Exit(1)
	}
	if err := f.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, "counttool:", err)
		os.Exit(1)
	}
	f.Close()
	time.Sleep(*sleep)
	out, _ := json.Marshal(map[string]any{"ok": true, "tool": *name, "job": args.Job, "step": args.Step})
	os.Stdout.Write(append(out, '\n'))
}
