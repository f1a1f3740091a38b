import type { Command } from "commander";
import { register as agent } from "./agent.ts";
import { register as critic } from "./critic.ts";
import { register as demo } from "./demo.ts";
import { register as generate } from "./generate.ts";
import { register as generator } from "./generator.ts";
import { register as generators } from "./generators.ts";
import { register as mergeShards } from "./merge-shards.ts";
import { register as report } from "./report.ts";
import { register as serve } from "./serve.ts";
import { register as slurm } from "./slurm.ts";
import { register as tfEval } from "./tf-eval.ts";
import { register as tfTrain } from "./tf-train.ts";
import { register as train } from "./train.ts";

/** Each sub-command lives in its own file and registers itself on the root program. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  demo,
  slurm,
  generator,
  generators,
  mergeShards,
  critic,
  tfTrain,
  tfEval,
  train,
  agent,
  generate,
  serve,
  report,
];
