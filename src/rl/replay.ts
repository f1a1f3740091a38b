import type { Rng } from "../core/rng.ts";

/** A group kept for reuse: its completions, rewards and the advantages computed when sampled. */
export interface ReplayGroup {
  prompt: number[];
  completions: { tokens: number[]; finished: boolean; toolMask?: number[] }[];
  rewards: number[];
  advantages: number[];
  successes: boolean[];
}

/**
 * Prioritised replay of informative groups: a group's priority is its mean |advantage|, so
 * groups with a clear winner come back more often. Capacity-bounded (lowest priority leaves
 * first). Replayed completions are off-policy; the trainer treats them as on-policy with ratio 1,
 * which is only sound for small replay shares and a slowly moving policy.
 */
export class ReplayBuffer {
  private groups: { group: ReplayGroup; priority: number }[] = [];

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new Error(`replay: capacity must be an integer ≥ 1, got ${capacity}`);
  }

  get size(): number {
    return this.groups.length;
  }

  static priority(g: ReplayGroup): number {
    return g.advantages.reduce((s, a) => s + Math.abs(a), 0) / Math.max(1, g.advantages.length);
  }

  /** Groups with no advantage signal are not stored: replaying them would teach nothing. */
  add(group: ReplayGroup): boolean {
    const priority = ReplayBuffer.priority(group);
    if (!(priority > 0)) return false;
    this.groups.push({ group, priority });
    if (this.groups.length > this.capacity) {
      let lowest = 0;
      for (let i = 1; i < this.groups.length; i++)
        if (this.groups[i]!.priority < this.groups[lowest]!.priority) lowest = i;
      this.groups.splice(lowest, 1);
    }
    return true;
  }

  /** Up to k distinct groups, each drawn with probability ∝ priority among those left. */
  sample(rng: Rng, k: number): ReplayGroup[] {
    const pool = [...this.groups];
    const out: ReplayGroup[] = [];
    while (out.length < k && pool.length > 0) {
      const total = pool.reduce((s, g) => s + g.priority, 0);
      let u = rng.next() * total;
      let idx = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        u -= pool[i]!.priority;
        if (u < 0) {
          idx = i;
          break;
        }
      }
      out.push(pool[idx]!.group);
      pool.splice(idx, 1);
    }
    return out;
  }

  getState(): ReplayGroup[] {
    return this.groups.map((g) => g.group);
  }

  setState(groups: ReplayGroup[]): void {
    this.groups = groups.map((group) => ({ group, priority: ReplayBuffer.priority(group) }));
  }
}
