// echotool is a child process for the command tool tests. Its first argument
// picks a behaviour.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: echotool MODE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo": // stdin back on stdout
		in, _ := io.ReadAll(os.Stdin)
		os.Stdout.Write(in)
	case "text":
		fmt.Print("plain words, not JSON")
	case "binary":
		os.Stdout.Write([]byte{0xff, 0xfe, 0x00, 0x01})
	case "sleep":
		time.Sleep(time.Minute)
	case "grandchild": // grandchild PIDFILE [exit]: start a sleeping grandchild, record its pid, then wait or exit
		child := exec.Command(os.Args[0], "sleep")
		child.Stdout = os.Stdout // the grandchild holds the output pipe open
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.WriteFile(os.Args[2], []byte(fmt.Sprint(child.Process.Pid)), 0o644)
		fmt.Printf(`{"grandchild": %d}`+"\n", child.Process.Pid)
		if len(os.Args) > 3 && os.Args[3] == "exit" {
			os.Exit(0)
		}
		time.Sleep(time.Minute)
	case "setsid-grandchild": // setsid-grandchild PIDFILE: start a grandchild in a session of its own, record its pid, wait
		child := exec.Command(os.Args[0], "sleep")
		detach(child) // leaves the tool's process group: a group kill misses it
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.WriteFile(os.Args[2], []byte(fmt.Sprint(child.Process.Pid)), 0o644)
		time.Sleep(time.Minute)
	case "flood":
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for {
			if _, err := os.Stdout.Write(line); err != nil {
				os.Exit(1)
			}
		}
	case "env":
		json.NewEncoder(os.Stdout).Encode(os.Environ())
	case "pwd":
		wd, _ := os.Getwd()
		json.NewEncoder(os.Stdout).Encode(map[string]string{"dir": wd})
	case "fail":
		fmt.Fprintln(os.Stderr, "boom: the input had no city")
		os.Exit(3)
	case "mcp":
		serveMCP()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// serveMCP is a minimal MCP server over stdio, newline-delimited JSON-RPC.
func serveMCP() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	reply := func(id json.RawMessage, result any) {
		out.Encode(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
	}
	text := func(s string) []any { return []any{map[string]any{"type": "text", "text": s}} }
	for in.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Cursor    string          `json:"cursor"`
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(in.Bytes(), &msg); err != nil {
			fmt.Fprintln(os.Stderr, "bad message:", err)
			continue
		}
		switch msg.Method {
		case "initialize":
			reply(msg.ID, map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{"tools": map[string]any{}},
				"serverInfo": map[string]any{"name": "echotool", "version": "1"}})
		case "notifications/initialized", "notifications/cancelled":
		case "tools/list":
			if msg.Params.Cursor == "" {
				reply(msg.ID, map[string]any{"nextCursor": "page2", "tools": []any{
					map[string]any{"name": "echo", "description": "Echo the arguments.", "annotations": map[string]any{"readOnlyHint": true},
						"inputSchema": map[string]any{"type": "object", "properties": map[string]any{"msg": map[string]any{"type": "string"}}, "required": []string{"msg"}}},
				}})
				continue
			}
			reply(msg.ID, map[string]any{"tools": []any{
				map[string]any{"name": "Say-Text", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "fail", "description": "Always fails.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "slow", "description": "Never answers.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "crash", "description": "Exits.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "env", "description": "Shows the environment.", "inputSchema": map[string]any{"type": "object"}},
				map[string]any{"name": "broken", "description": "Bad schema.", "inputSchema": map[string]any{"type": "string"}},
			}})
		case "tools/call":
			switch msg.Params.Name {
			case "echo":
				// A notification and a request of the server's own first.
				out.Encode(map[string]any{"jsonrpc": "2.0", "method": "notifications/message", "params": map[string]any{"level": "info", "data": "echoing"}})
				out.Encode(map[string]any{"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": map[string]any{}})
				reply(msg.ID, map[string]any{"content": text(string(msg.Params.Arguments)), "structuredContent": msg.Params.Arguments})
			case "Say-Text":
				reply(msg.ID, map[string]any{"content": append(text("line one"), map[string]any{"type": "image", "data": "AAAA", "mimeType": "image/png"})})
			case "fail":
				reply(msg.ID, map[string]any{"content": text("disk on fire"), "isError": true})
			case "slow":
			case "crash":
				fmt.Fprintln(os.Stderr, "crashing as asked")
				os.Exit(7)
			case "env":
				reply(msg.ID, map[string]any{"content": text(strings.Join(os.Environ(), "\n"))})
			default:
				out.Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32602, "message": "unknown tool " + msg.Params.Name}})
			}
		default:
			if len(msg.ID) > 0 && msg.Method == "" {
				// The client's answer to our sampling request: record it.
				fmt.Fprintln(os.Stderr, "client answered:", string(in.Bytes()))
				continue
			}
			out.Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "no method " + msg.Method}})
		}
	}
}
