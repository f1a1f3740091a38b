import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Limiter } from "../../src/llm/limiter.ts";

/** A promise with its resolve exposed, so a test decides when each task finishes. */
function gate() {
  let open!: () => void;
  const done = new Promise<void>((r) => {
    open = r;
  });
  return { done, open };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("Limiter", () => {
  it("runs at most max tasks at once and starts waiters in FIFO order", async () => {
    const limiter = new Limiter(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    const all = gates.map((g, i) =>
      limiter.run(async () => {
        started.push(i);
        await g.done;
        return i * 10;
      }),
    );
    await tick();
    assert.deepEqual(started, [0, 1]);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.pending, 3);
    gates[1]!.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]!.open();
    await tick();
    assert.deepEqual(started, [0, 1, 2, 3]);
    for (const g of gates) g.open();
    assert.deepEqual(await Promise.all(all), [0, 10, 20, 30, 40]);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.peak, 2);
  });

  it("releases the slot when a task throws", async () => {
    const limiter = new Limiter(1);
    await assert.rejects(
      limiter.run(async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(limiter.active, 0);
    assert.equal(await limiter.run(async () => "after"), "after");
  });

  it("keeps the peak within max under random timing", async () => {
    const limiter = new Limiter(3);
    let now = 0;
    let seen = 0;
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        limiter.run(async () => {
          now++;
          seen = Math.max(seen, now);
          await new Promise((r) => setTimeout(r, i % 4));
          now--;
        }),
      ),
    );
    assert.equal(seen, 3);
    assert.equal(limiter.peak, 3);
  });

  it("rejects a max that is not a positive integer", () => {
    assert.throws(() => new Limiter(0), RangeError);
    assert.throws(() => new Limiter(1.5), RangeError);
  });
});
