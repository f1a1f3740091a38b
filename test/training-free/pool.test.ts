import assert from "node:assert/strict";
import { test } from "node:test";
import { mapPool } from "../../src/training-free/pool.ts";

test("mapPool keeps order and never exceeds its limit", async () => {
  let active = 0;
  let peak = 0;
  const out = await mapPool([5, 1, 4, 2, 3], 2, async (x) => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, x));
    active--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30]);
  assert.equal(peak, 2);
  await assert.rejects(
    mapPool([1], 0, async (x) => x),
    /limit must be an integer ≥ 1/,
  );
});
