#!/usr/bin/env node
/**
 * Builds the optional BLAS addon (native/blas.c → native/build/blas.node) with the system C
 * compiler. Runs after `npm install` / `npm ci`; it never fails the install: without a
 * compiler or Node's headers the engine keeps its pure-tfjs kernels and this prints why.
 * `GRPO_NO_NATIVE=1` skips the build.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const source = path.join(root, "native", "blas.c");
const outDir = path.join(root, "native", "build");
const out = path.join(outDir, "blas.node");

function say(msg) {
  process.stdout.write(`grpo-ts native BLAS: ${msg}\n`);
}

function headerDir() {
  const candidates = [
    process.env.NODE_API_INCLUDE,
    path.join(path.dirname(process.execPath), "..", "include", "node"),
    path.join(os.homedir(), ".cache", "node-gyp", process.versions.node, "include", "node"),
  ].filter(Boolean);
  return candidates.find((d) => existsSync(path.join(d, "node_api.h")));
}

function main() {
  if (process.env.GRPO_NO_NATIVE === "1") return say("skipped (GRPO_NO_NATIVE=1)");
  const include = headerDir();
  if (!include)
    return say("skipped (Node's node_api.h not found; set NODE_API_INCLUDE) — using tfjs kernels");
  const cc = process.env.CC || "cc";
  mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(
      cc,
      [
        "-O2",
        "-shared",
        "-fPIC",
        "-DNODE_GYP_MODULE_NAME=blas",
        "-DNAPI_VERSION=8",
        `-I${include}`,
        source,
        "-o",
        tmp,
        "-ldl",
        "-pthread",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    renameSync(tmp, out);
    say(`built ${path.relative(root, out)}`);
  } catch (err) {
    rmSync(tmp, { force: true });
    const stderr = err.stderr ? String(err.stderr).trim() : "";
    const detail = stderr ? stderr.split("\n").slice(-3).join(" | ") : err.message;
    say(`build failed (${detail}) — using tfjs kernels`);
  }
}

try {
  main();
} catch (err) {
  say(`skipped (${err.message}) — using tfjs kernels`);
}
