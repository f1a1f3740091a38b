/** Commands run as a user runs them: a child process whose output is collected until it exits. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

export const GRPO_BIN = join(import.meta.dirname, "..", "..", "bin", "grpo.js");

export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** `cmd args` started; `done` resolves with its exit and everything it printed. */
export function startChild(
  cmd: string,
  args: string[],
  opts: ChildOptions = {},
): { child: ChildProcess; done: Promise<Outcome> } {
  const child = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: opts.cwd,
    env: opts.env ?? process.env,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Outcome>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** The `grpo` executable of this checkout, started in a child process. */
export function startGrpo(args: string[], opts: ChildOptions = {}) {
  return startChild(process.execPath, [GRPO_BIN, ...args], opts);
}
