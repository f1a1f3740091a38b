import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readJsonl } from "../../src/io/files.ts";
import type { AttemptRecord, LearnerRecord, VersionRecord } from "../../src/training-free/run-store.ts";
import { requestHash } from "../../src/training-free/run-store.ts";
import type { FitResult } from "../../src/training-free/types.ts";
import { type RecordedRequest, startScriptedServer } from "../helpers/scripted-server.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { AGENT_MODEL, agentReply, learnerStep } from "./scripted-world.ts";

const tmp = tempDirs("tf-resume-");
const CHILD = join(import.meta.dirname, "fixtures", "fit-child.ts");

/** A learner whose replies follow from the request alone, so that every run learns the same. */
function learnerReply(messages: { role: string; content: string }[]): { content: string } {
  const step = learnerStep(messages as never);
  const user = messages[1]!.content;
  if (step === "summarise") return { content: `Summary: ${user.match(/reply: (\d+)/)?.[1] ?? "?"}` };
  if (step === "contrast") {
    const q = /What is (\d+) plus (\d+)/.exec(user)!;
    return { content: `<lessons>\n1. Sum ${q[1]} and ${q[2]}: carry the tens digit.\n</lessons>` };
  }
  if (step === "propose") {
    const lesson = /1\. (.*)/.exec(user)![1]!;
    return { content: JSON.stringify([{ operation: "ADD", id: null, content: lesson }]) };
  }
  // merge: apply every proposal as it stands
  const ops = [...user.matchAll(/(?:proposed: |- )(\{.*\})/g)].map((m) => JSON.parse(m[1]!));
  return { content: JSON.stringify(ops) };
}

describe("a training-free run killed mid-way and rerun", async () => {
  let killAt = Number.POSITIVE_INFINITY;
  let child: ChildProcess | undefined;
  const server = await startScriptedServer(
    ({ body, messages, index }) => {
      if (index + 1 === killAt) child?.kill("SIGKILL");
      return body.model === AGENT_MODEL
        ? agentReply(body, (_q, seed) => seed % 2 === 0)
        : learnerReply(messages);
    },
    { latencyMs: 5 },
  );
  after(() => server.close());

  const run = (dir: string): Promise<{ code: number | null; signal: string | null; out: string }> =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ["--import", "tsx", CHILD], {
        env: {
          ...process.env,
          BASE_URL: server.baseURL,
          RUN_DIR: join(dir, "run"),
          LIBRARY_PATH: join(dir, "adder.json"),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = p;
      let out = "";
      let err = "";
      p.stdout!.on("data", (d) => {
        out += d;
      });
      p.stderr!.on("data", (d) => {
        err += d;
      });
      p.on("error", reject);
      p.on("close", (code, signal) => {
        if (code !== 0 && signal === null) reject(new Error(`child failed (${code}): ${err}`));
        else resolve({ code, signal, out });
      });
    });
  const since = (n: number): RecordedRequest[] => server.requests.slice(n);

  test("no recorded call is asked again, and the library is the uninterrupted run's", async () => {
    // The uninterrupted run, for reference.
    const whole = tmp("whole");
    const ref = await run(whole);
    const refResult = JSON.parse(ref.out) as FitResult;
    assert.equal(refResult.complete, true);
    const total = server.requests.length;
    assert.ok(total > 60, `the run makes enough calls to be cut (${total})`);

    const dir = tmp("killed");
    const start = server.requests.length;
    killAt = start + Math.floor(total / 2);
    const killed = await run(dir);
    assert.equal(killed.signal, "SIGKILL");
    killAt = Number.POSITIVE_INFINITY;
    const cut = server.requests.length;
    assert.ok(cut - start < total, "killed before the end");

    const runDir = join(dir, "run");
    const attempts = readJsonl(join(runDir, "attempts.jsonl")).records.map((r) => r.value as AttemptRecord);
    const learner = readJsonl(join(runDir, "learner.jsonl")).records.map((r) => r.value as LearnerRecord);
    const doneSeeds = new Set(attempts.filter((a) => a.status === "ok").map((a) => a.seed));
    const recordedHashes = learner.filter((l) => l.ok).map((l) => l.hash);
    assert.ok(doneSeeds.size > 0 && recordedHashes.length > 0, "the killed run had recorded work");

    const resumed = await run(dir);
    const result = JSON.parse(resumed.out) as FitResult;
    assert.equal(result.complete, true);
    assert.ok(result.batches.appliedNow < result.batches.planned, "the rerun continued, not started over");
    // Attempts have seeds of their own; learner requests may repeat word for word (the same
    // summary asked in two epochs), so those are counted: recorded + asked again ≤ the reference's.
    const hashCounts = (reqs: RecordedRequest[]) => {
      const m = new Map<string, number>();
      for (const r of reqs)
        if (r.body.model !== AGENT_MODEL) {
          const h = requestHash(r.body.messages, r.body.temperature, r.body.max_tokens);
          m.set(h, (m.get(h) ?? 0) + 1);
        }
      return m;
    };
    const reference = hashCounts(server.requests.slice(0, total));
    const rerun = hashCounts(since(cut));
    const recorded = new Map<string, number>();
    for (const h of recordedHashes) recorded.set(h, (recorded.get(h) ?? 0) + 1);
    for (const r of since(cut))
      if (r.body.model === AGENT_MODEL)
        assert.ok(!doneSeeds.has(r.body.seed), `attempt seed ${r.body.seed} asked again`);
    for (const [h, n] of rerun)
      assert.ok(
        n + (recorded.get(h) ?? 0) <= (reference.get(h) ?? 0),
        "a recorded learner call was asked again",
      );
    // Together the killed run and its rerun asked at most what was in flight at the kill twice.
    assert.ok(
      server.requests.length - start <= total + 4,
      `${server.requests.length - start} calls vs ${total}`,
    );

    assert.equal(
      readFileSync(join(dir, "adder.json"), "utf8"),
      readFileSync(join(whole, "adder.json"), "utf8"),
    );
    const versions = (d: string) =>
      readJsonl(join(d, "run", "library.jsonl")).records.map((r) => {
        const v = r.value as VersionRecord;
        return [v.version, v.batch, v.experiences, v.history];
      });
    assert.deepEqual(versions(dir), versions(whole));
    assert.ok(JSON.parse(readFileSync(join(dir, "adder.json"), "utf8")).experiences.length > 0);

    // A finished run rerun does nothing and says so.
    const before = server.requests.length;
    const again = JSON.parse((await run(dir)).out) as FitResult;
    assert.equal(again.status, "already-finished");
    assert.equal(server.requests.length, before);
  });
});
