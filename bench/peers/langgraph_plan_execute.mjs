// LangGraph.js plan-and-execute, as in LangGraph's plan-and-execute tutorial:
// a planner with structured output writes {"steps": [...]}, an executor
// (the prebuilt ReAct agent with the tools) runs the first step, a replanner
// with structured output returns the remaining plan or the response; repeat.
import { ChatOllama } from "@langchain/ollama";
import { createReactAgent } from "@langchain/langgraph/prebuilt";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { tool } from "@langchain/core/tools";
import { HumanMessage } from "@langchain/core/messages";
import { ChatPromptTemplate } from "@langchain/core/prompts";
import { z } from "zod";
import { env, fetchTools, run, modelCounter } from "./common.mjs";

const PlanExecuteState = Annotation.Root({
  input: Annotation({ reducer: (x, y) => y ?? x ?? "" }),
  plan: Annotation({ reducer: (x, y) => y ?? x ?? [] }),
  pastSteps: Annotation({ reducer: (x, y) => x.concat(y), default: () => [] }),
  response: Annotation({ reducer: (x, y) => y ?? x }),
});

const plan = z.object({
  steps: z.array(z.string()).describe("different steps to follow, should be in sorted order"),
});
const response = z.object({ response: z.string().describe("Response to user.") });
const act = z.object({
  action: z.union([response, plan]).describe("Action to perform. If you want to respond to user, use Response. If you need to further use tools to get the answer, use Plan."),
});

const plannerPrompt = ChatPromptTemplate.fromTemplate(
  `For the given objective, come up with a simple step by step plan. \
This plan should involve individual tasks, that if executed correctly will yield the correct answer. Do not add any superfluous steps. \
The result of the final step should be the final answer. Make sure that each step has all the information needed - do not skip steps.

{objective}`);

const replannerPrompt = ChatPromptTemplate.fromTemplate(
  `For the given objective, come up with a simple step by step plan. \
This plan should involve individual tasks, that if executed correctly will yield the correct answer. Do not add any superfluous steps. \
The result of the final step should be the final answer. Make sure that each step has all the information needed - do not skip steps.

Your objective was this:
{input}

Your original plan was this:
{plan}

You have currently done the follow steps:
{pastSteps}

Update your plan accordingly. If no more steps are needed and you can return to the user, then respond with that. Otherwise, fill out the plan. Only add steps to the plan that still NEED to be done. Do not return previously done steps as part of the plan.`);

await run("langgraph-plan-execute", async () => {
  const tools = (await fetchTools()).map((t) =>
    tool(async (args) => t.call(args), { name: t.name, description: t.description, schema: t.parameters }));
  const executorLLM = new ChatOllama({ baseUrl: env.url, model: env.model, temperature: 0 });
  const plannerLLM = new ChatOllama({ baseUrl: env.url, model: env.planner, temperature: 0 });
  const agentExecutor = createReactAgent({ llm: executorLLM, tools });
  const planner = plannerPrompt.pipe(plannerLLM.withStructuredOutput(plan));
  const replanner = replannerPrompt.pipe(plannerLLM.withStructuredOutput(act));

  async function executeStep(state, config) {
    const task = state.plan[0];
    const input = { messages: [new HumanMessage(task)] };
    const { messages } = await agentExecutor.invoke(input, config);
    return { pastSteps: [[task, messages[messages.length - 1].content.toString()]], plan: state.plan.slice(1) };
  }
  async function planStep(state, config) {
    const p = await planner.invoke({ objective: state.input }, config);
    return { plan: p.steps };
  }
  async function replanStep(state, config) {
    const output = await replanner.invoke({
      input: state.input,
      plan: state.plan.join("\n"),
      pastSteps: state.pastSteps.map(([step, result]) => `${step}: ${result}`).join("\n"),
    }, config);
    const toolCall = output.action;
    if ("response" in toolCall) return { response: toolCall.response };
    return { plan: toolCall.steps };
  }
  const shouldEnd = (state) => (state.response ? "true" : "false");

  const app = new StateGraph(PlanExecuteState)
    .addNode("planner", planStep)
    .addNode("agent", executeStep)
    .addNode("replan", replanStep)
    .addEdge(START, "planner")
    .addEdge("planner", "agent")
    .addEdge("agent", "replan")
    .addConditionalEdges("replan", shouldEnd, { true: END, false: "agent" })
    .compile();
  const out = await app.invoke({ input: env.request }, { recursionLimit: env.maxSteps, callbacks: [modelCounter] });
  return out.response;
});
