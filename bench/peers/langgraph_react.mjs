// LangGraph.js prebuilt ReAct agent (createReactAgent) on ChatOllama,
// with the scenario tools. One model, every turn sees the whole transcript.
import { ChatOllama } from "@langchain/ollama";
import { createReactAgent } from "@langchain/langgraph/prebuilt";
import { tool } from "@langchain/core/tools";
import { HumanMessage } from "@langchain/core/messages";
import { env, fetchTools, run, modelCounter } from "./common.mjs";

await run("langgraph-react", async () => {
  const tools = (await fetchTools()).map((t) =>
    tool(async (args) => t.call(args), { name: t.name, description: t.description, schema: t.parameters }));
  const llm = new ChatOllama({ baseUrl: env.url, model: env.model, temperature: 0 });
  const agent = createReactAgent({ llm, tools });
  const out = await agent.invoke({ messages: [new HumanMessage(env.request)] },
    { recursionLimit: env.maxSteps, callbacks: [modelCounter] });
  return out.messages.at(-1).content;
});
