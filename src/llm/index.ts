import { LLMClient, type LLMClientDeps } from "./client.ts";
import { AGENTS, type AgentEndpoint, type AgentName } from "./config.ts";

export * from "./cache.ts";
export * from "./client.ts";
export * from "./config.ts";
export * from "./json-text.ts";
export * from "./limiter.ts";
export * from "./messages.ts";
export * from "./openai-compatible.ts";
export type * from "./port.ts";
export * from "./reasoning.ts";
export { TransportThreads } from "./transport-threads.ts";
export * from "./usage.ts";

/**
 * One client per agent. Each gets its own limiter (concurrency is per agent) and, unless `deps`
 * supplies one, its own jitter stream; a shared `deps.limiter` caps all agents together.
 */
export function createClients(
  config: Record<AgentName, AgentEndpoint>,
  deps: LLMClientDeps = {},
): Record<AgentName, LLMClient> {
  const out = {} as Record<AgentName, LLMClient>;
  for (const agent of AGENTS) {
    out[agent] = new LLMClient(config[agent], { ...deps, rng: deps.rng?.fork() });
  }
  return out;
}
