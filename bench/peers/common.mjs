// Shared by every harness: the run's settings (from the environment the Go
// driver, internal/bench/peers, sets), the scenario tools as thin HTTP
// wrappers over the simulator's tool server (same names, descriptions and
// JSON schemas as agentd's fixture tools), and the one-line JSON report.
//
//   AGENTD_SIM_URL   simulator base URL (Ollama API, /v1, and /tools)
//   PEER_REQUEST     the scenario's request text
//   PEER_MODEL       model of a single agent (and of a plan-and-execute executor)
//   PEER_PLANNER     model of a plan-and-execute planner and replanner
//   PEER_MAX_STEPS   recursion/turn cap (default 60)

export const env = {
  url: process.env.AGENTD_SIM_URL ?? "http://127.0.0.1:11435",
  request: process.env.PEER_REQUEST ?? "",
  model: process.env.PEER_MODEL ?? "qwen3:8b",
  planner: process.env.PEER_PLANNER ?? "gemma3:12b",
  maxSteps: Number(process.env.PEER_MAX_STEPS ?? 60),
};

export const counts = { toolCalls: 0, modelCalls: 0 };

// fetchTools returns [{name, description, parameters, call(args)}].
export async function fetchTools() {
  const res = await fetch(`${env.url}/tools`);
  if (!res.ok) throw new Error(`GET ${env.url}/tools: ${res.status}`);
  const list = await res.json();
  return list.map((t) => ({
    ...t,
    async call(args) {
      counts.toolCalls++;
      const r = await fetch(`${env.url}/tools/${t.name}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(args ?? {}),
      });
      const text = await r.text();
      if (!r.ok) return JSON.stringify({ error: `HTTP ${r.status}: ${text}` });
      return text;
    },
  }));
}

// run times fn and prints {framework, wall_ms, model_calls, tool_calls, answer} or {error}.
export async function run(framework, fn) {
  const t0 = performance.now();
  try {
    const answer = await fn();
    const wall = performance.now() - t0;
    process.stdout.write(JSON.stringify({ framework, wall_ms: wall, model_calls: counts.modelCalls, tool_calls: counts.toolCalls, answer }) + "\n");
  } catch (err) {
    const wall = performance.now() - t0;
    process.stdout.write(JSON.stringify({ framework, wall_ms: wall, model_calls: counts.modelCalls, tool_calls: counts.toolCalls, error: String(err?.stack ?? err) }) + "\n");
    process.exitCode = 1;
  }
}

// modelCounter is a LangChain callback handler counting chat model calls.
export const modelCounter = { handleChatModelStart() { counts.modelCalls++; } };
