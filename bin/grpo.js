#!/usr/bin/env node
// The CLI ships as TypeScript and runs through tsx, so there is no build step between a
// checkout and a working `grpo` command.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
