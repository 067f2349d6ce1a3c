// Strands Agents (TypeScript SDK): one Agent with the scenario tools. The
// SDK has no Ollama provider in TypeScript, so it uses its OpenAI provider
// against the simulator's OpenAI-compatible /v1 endpoint (as Ollama serves it).
import { Agent, tool } from "@strands-agents/sdk";
import { OpenAIModel } from "@strands-agents/sdk/models/openai";
import { env, fetchTools, run, counts } from "./common.mjs";

await run("strands-agent", async () => {
  const tools = (await fetchTools()).map((t) =>
    tool({ name: t.name, description: t.description, inputSchema: t.parameters, callback: async (args) => t.call(args) }));
  const model = new OpenAIModel({ apiKey: "ollama", clientConfig: { baseURL: `${env.url}/v1` }, modelId: env.model, api: "chat" });
  const agent = new Agent({ model, tools, printer: false });
  const result = await agent.invoke(env.request);
  counts.modelCalls = agent.metrics?.latestAgentInvocation?.cycles?.length ?? agent.metrics?.cycleCount ?? -1;
  return result.toString();
});
