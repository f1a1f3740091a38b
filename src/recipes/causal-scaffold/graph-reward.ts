import { edgeCauses, type Scaffold } from "./scaffold.ts";

export interface GraphReward {
  total: number;
  acyclic: number;
  coverage: number;
  ruleFraction: number;
  connected: number;
}

export const GRAPH_REWARD_WEIGHTS = {
  acyclic: 0.3,
  coverage: 0.2,
  ruleFraction: 0.4,
  connected: 0.1,
} as const;

function hasCycle(nodes: Set<string>, adjacency: Map<string, string[]>): boolean {
  // Iterative three-colour DFS: deep scaffolds must not overflow the stack.
  const state = new Map<string, 1 | 2>();
  for (const root of nodes) {
    if (state.has(root)) continue;
    const stack: [string, number][] = [[root, 0]];
    state.set(root, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const next = adjacency.get(top[0]) ?? [];
      if (top[1] < next.length) {
        const child = next[top[1]++]!;
        const s = state.get(child);
        if (s === 1) return true;
        if (s === undefined) {
          state.set(child, 1);
          stack.push([child, 0]);
        }
      } else {
        state.set(top[0], 2);
        stack.pop();
      }
    }
  }
  return false;
}

/** Fraction of the nodes in the largest weakly connected component (1 when the graph is connected). */
function largestComponentFraction(nodes: Set<string>, undirected: Map<string, Set<string>>): number {
  if (nodes.size === 0) return 0;
  const seen = new Set<string>();
  let largest = 0;
  for (const start of nodes) {
    if (seen.has(start)) continue;
    seen.add(start);
    const queue = [start];
    let size = 0;
    while (queue.length > 0) {
      size++;
      for (const n of undirected.get(queue.pop()!) ?? []) {
        if (!seen.has(n)) {
          seen.add(n);
          queue.push(n);
        }
      }
    }
    largest = Math.max(largest, size);
  }
  return largest / nodes.size;
}

/**
 * Structural reward of a scaffold's causal graph, deterministic and in [0, 1]:
 * 0.3·acyclic + 0.2·coverage + 0.4·(fraction of edges with a non-empty rule) + 0.1·connected.
 * Coverage is the fraction of the knowns and the target that appear as nodes of some edge.
 * `connected` is the share of nodes in the largest weakly connected component: 1 for a weakly
 * connected graph, partial credit otherwise. This is the definition behind the r_graph values
 * stored in the seed rollout files, so recomputed rewards match the logged ones.
 * A scaffold with no edges scores 0 on every term: there is no structure to reward, and calling
 * an empty graph "acyclic" or "connected" would pay for writing nothing.
 */
export function graphReward(s: Scaffold): GraphReward {
  const edges = s.causal_graph ?? [];
  if (edges.length === 0) return { total: 0, acyclic: 0, coverage: 0, ruleFraction: 0, connected: 0 };
  const nodes = new Set<string>();
  const adjacency = new Map<string, string[]>();
  const undirected = new Map<string, Set<string>>();
  const link = (a: string, b: string) => {
    if (!undirected.has(a)) undirected.set(a, new Set());
    if (!undirected.has(b)) undirected.set(b, new Set());
    undirected.get(a)!.add(b);
    undirected.get(b)!.add(a);
  };
  let withRule = 0;
  for (const edge of edges) {
    if (typeof edge.rule === "string" && edge.rule.trim() !== "") withRule++;
    const effect = edge.effect.trim();
    nodes.add(effect);
    for (const raw of edgeCauses(edge)) {
      const cause = raw.trim();
      nodes.add(cause);
      if (!adjacency.has(cause)) adjacency.set(cause, []);
      adjacency.get(cause)!.push(effect);
      link(cause, effect);
    }
  }
  const required = new Set<string>(Object.keys(s.knowns ?? {}).map((k) => k.trim()));
  if (s.target_variable.trim() !== "") required.add(s.target_variable.trim());
  let covered = 0;
  for (const r of required) if (nodes.has(r)) covered++;
  const acyclic = hasCycle(nodes, adjacency) ? 0 : 1;
  const coverage = required.size === 0 ? 0 : covered / required.size;
  const ruleFraction = withRule / edges.length;
  const connected = largestComponentFraction(nodes, undirected);
  const w = GRAPH_REWARD_WEIGHTS;
  const total =
    w.acyclic * acyclic + w.coverage * coverage + w.ruleFraction * ruleFraction + w.connected * connected;
  return { total, acyclic, coverage, ruleFraction, connected };
}
