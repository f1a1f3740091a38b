import type { Command } from "commander";
import { register as demo } from "./demo.ts";
import { register as slurm } from "./slurm.ts";

/** Each sub-command lives in its own file and registers itself on the root program. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [demo, slurm];
