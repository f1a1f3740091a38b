import { existsSync } from "node:fs";
import { resolve } from "node:path";

/** The seed rollout file lives beside the repository, never inside it. */
export const SEED_ROLLOUTS = resolve(
  import.meta.dirname,
  "../../../../shared/fixtures/seed_generator_1_rollouts.jsonl",
);

/** `false` when the fixture is present, else the skip message node:test prints. */
export const seedSkip: false | string = existsSync(SEED_ROLLOUTS)
  ? false
  : `seed fixture not found at ${SEED_ROLLOUTS}; place seed_generator_1_rollouts.jsonl in ../shared/fixtures/ to run this test`;
