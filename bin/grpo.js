#!/usr/bin/env node
// The `grpo` command. An installed package runs its compiled JavaScript (dist/). A checkout runs
// its TypeScript sources through tsx, so that an edit needs no rebuild; GRPO_USE_DIST=1 runs the
// compiled code there too (as the package does).
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
let tsx;
if (process.env.GRPO_USE_DIST !== "1" && existsSync(source)) {
  try {
    tsx = await import("tsx/esm/api");
  } catch {
    // a checkout installed without its development tools: the compiled code it is then
  }
}
if (tsx) {
  tsx.register();
  await import(source.href);
} else {
  await import("../dist/cli/main.js");
}
