import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import {
  type CutShort,
  type Episode,
  type EpisodeLimits,
  type MultiTurnOptions,
  runMultiTurnRollout,
  runMultiTurnRollouts,
  type TextCodec,
  type TurnPolicy,
  toRollout,
} from "../../src/rl/multiturn.ts";
import { rolloutMask } from "../../src/rl/rollout.ts";

/**
 * A tool-using environment that is not the email task: the policy says "inc" to raise a
 * counter, which the tool reports back as "n=<count>;", and "stop" to end; three increments
 * solve it. It shows that any environment behind the Episode interface plugs into the rollout.
 */
const CHARS = ["<eos>", ";", ..."abcdefghijklmnopqrstuvwxyz0123456789=#".split("")];
const EOS = 0;
const STOP = 1;
const codec: TextCodec = {
  encode: (text) =>
    [...text].map((c) => {
      const id = CHARS.indexOf(c);
      if (id < 0) throw new Error(`no token for ${JSON.stringify(c)}`);
      return id;
    }),
  decode: (ids) => ids.map((id) => CHARS[id]!).join(""),
};

interface CounterStats {
  count: number;
  calls: string[];
  cutShort: CutShort | null;
}

class Counter implements Episode<CounterStats> {
  private count = 0;
  private calls: string[] = [];
  private ended: CutShort | null = null;
  done = false;

  constructor(
    readonly limits: EpisodeLimits,
    readonly prompt = "count;",
  ) {}

  get turns(): number {
    return this.calls.length;
  }

  get solved(): boolean {
    return this.done && this.count === 3;
  }

  step(turn: string) {
    this.calls.push(turn);
    if (turn === "stop" || this.turns >= this.limits.maxTurns) {
      this.done = true;
      return { done: true as const, reward: this.count === 3 ? 1 : 0 };
    }
    if (turn === "inc") this.count++;
    return { done: false as const, context: `n=${this.count};` };
  }

  cutShort(reason: CutShort): number {
    this.ended = reason;
    return reason === "eos" ? -0.5 : -1;
  }

  stats(): CounterStats {
    return { count: this.count, calls: [...this.calls], cutShort: this.ended };
  }
}

/** Says the scripted turns in order (the number of "n=" results so far gives the turn). */
function scripted(turns: string[][]): TurnPolicy {
  return (contexts, req) => {
    const tokens = contexts.map((ctx, i) => {
      const k = Number(codec.decode(ctx).match(/^count;#(\d)/)?.[1] ?? 0);
      const done = (codec.decode(ctx).match(/n=/g) ?? []).length;
      return codec.encode(turns[k]![done]!).slice(0, req.maxNewTokens[i]);
    });
    return { tokens, logprobs: tokens.map((t) => t.map(() => -0.25)) };
  };
}

function opts(extra: Partial<MultiTurnOptions> = {}): MultiTurnOptions {
  return {
    maxTurns: 10,
    maxTokens: 1000,
    temperature: 1,
    rng: new Rng(1),
    stopTokenId: STOP,
    eosId: EOS,
    codec,
    ...extra,
  };
}

const one = (limits: EpisodeLimits) => new Counter(limits);

describe("multi-turn rollout over any Episode", () => {
  it("lays out prompt, policy turns and contexts with their masks and takes the episode's reward", () => {
    const r = runMultiTurnRollout(scripted([["inc;", "inc;", "inc;", "stop;"]]), (_, l) => one(l), opts());
    assert.equal(codec.decode(r.ids), "count;inc;n=1;inc;n=2;inc;n=3;stop;");
    // The prompt and each "n=k;" are context (0); each turn the policy wrote is trained (1).
    const segments: [string, number][] = [
      ["count;", 0],
      ["inc;", 1],
      ["n=1;", 0],
      ["inc;", 1],
      ["n=2;", 0],
      ["inc;", 1],
      ["n=3;", 0],
      ["stop;", 1],
    ];
    assert.deepEqual(
      r.policyMask,
      segments.flatMap(([text, m]) => [...text].map(() => m)),
    );
    assert.deepEqual(
      r.logprobs,
      r.policyMask.map((m) => (m ? -0.25 : 0)),
    );
    assert.equal(r.promptLength, 6);
    assert.equal(r.reward, 1);
    assert.equal(r.success, true);
    assert.deepEqual(r.stats.episode, { count: 3, calls: ["inc", "inc", "inc", "stop"], cutShort: null });
    assert.equal(r.stats.turns, 4);
    assert.equal(r.stats.policyTokens, 4 * 4 + 1);
    assert.equal(r.stats.toolTokens, 3 * 4);
    const t = toRollout(r, 2);
    assert.equal(t.group, 2);
    assert.deepEqual(rolloutMask(t, { eosId: EOS, maskTruncatedCompletions: true }), r.policyMask.slice(6));
  });

  it("gives each episode of a group its own episode and reward, and passes the limits on", () => {
    const turns = [
      ["inc;", "inc;", "inc;", "stop;"],
      ["inc;", "stop;"],
    ];
    const made: EpisodeLimits[] = [];
    const rs = runMultiTurnRollouts(
      scripted(turns),
      (i, limits) => {
        made.push(limits);
        // The episode index is written into the prompt so the scripted policy can tell them apart.
        return new Counter(limits, `count;#${i};`);
      },
      2,
      opts({ maxTurns: 7, maxTokens: 99 }),
    );
    assert.deepEqual(made, [
      { maxTurns: 7, maxTokens: 99 },
      { maxTurns: 7, maxTokens: 99 },
    ]);
    assert.deepEqual(
      rs.map((r) => [r.reward, r.success, r.stats.episode.count]),
      [
        [1, true, 3],
        [0, false, 1],
      ],
    );
  });

  it("a turn that ends without its stop token gets one before the context", () => {
    const r = runMultiTurnRollout(scripted([["inc", "stop;"]]), (_, l) => one(l), opts());
    assert.equal(codec.decode(r.ids), "count;inc;n=1;stop;");
    // The separator after "inc" was not written by the policy: mask 0, like the context after it.
    assert.deepEqual(r.policyMask.slice(6, 14), [1, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(r.stats.episode.calls, ["inc", "stop"]);
    assert.equal(r.stats.policyTokens, 3 + 5);
  });

  it("scores an episode whose context fills up, or whose policy writes eos, by cutShort", () => {
    const full = runMultiTurnRollout(
      scripted([["inc;", "inc;", "inc;", "stop;"]]),
      (_, l) => one(l),
      opts({ contextLength: 12 }),
    );
    assert.equal(full.stats.truncated, true);
    assert.equal(full.reward, -1);
    assert.equal(full.stats.episode.cutShort, "context_full");
    assert.equal(toRollout(full, 0).finished, false);

    const eos: TurnPolicy = (contexts) => ({
      tokens: contexts.map(() => [...codec.encode("inc"), EOS, ...codec.encode("junk")]),
      logprobs: contexts.map(() => new Array(8).fill(-1)),
    });
    const r = runMultiTurnRollout(eos, (_, l) => one(l), opts());
    assert.equal(r.stats.stoppedByEos, true);
    assert.equal(r.reward, -0.5);
    assert.equal(r.ids.at(-1), EOS);
    // Nothing after eos: the trainer's mask stops there.
    assert.equal(codec.decode(r.ids), "count;inc<eos>");
    assert.deepEqual(r.stats.episode, { count: 1, calls: ["inc"], cutShort: "eos" });
  });

  it("refuses a used episode and options out of range, naming them", () => {
    const used = (_: number, l: EpisodeLimits) => {
      const e = new Counter(l);
      e.step("inc");
      return e;
    };
    const p = scripted([["stop;"]]);
    assert.throws(() => runMultiTurnRollout(p, used, opts()), /used or invalid episode at index 0/);
    assert.throws(() => runMultiTurnRollout(p, (_, l) => one(l), opts({ maxTurns: 0 })), /maxTurns/);
    assert.throws(() => runMultiTurnRollouts(p, (_, l) => one(l), 0, opts()), /count/);
    assert.throws(
      () => runMultiTurnRollout(p, (_, l) => one(l), opts({ contextLength: 4 })),
      /prompt of episode 0 has 6 tokens, contextLength is 4/,
    );
  });
});
