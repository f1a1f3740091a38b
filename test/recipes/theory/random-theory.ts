import type { Rng } from "../../../src/core/rng.ts";
import type { SU2, SU3, Theory } from "../../../src/recipes/theory/fields.ts";

/** n fields drawn uniformly: SU(3) 1, 3 or 3̄, SU(2) 1 or 2, hypercharge −12…+12 in sixths. */
export function randomTheory(rng: Rng, n: number): Theory {
  return Array.from({ length: n }, () => ({
    su3: rng.pick<SU3>(["1", "3", "3b"]),
    su2: rng.pick<SU2>(["1", "2"]),
    y6: rng.int(25) - 12,
  }));
}
