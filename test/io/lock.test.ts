import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  acquireLock,
  LockHeldError,
  processAlive,
  processStartTime,
  sweepStaleTemps,
  withLock,
} from "../../src/io/lock.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-lock-");
const LOCK_MODULE = join(import.meta.dirname, "..", "..", "src", "io", "lock.ts");

/** A separate process that takes the lock, says so on stdout, and then waits to be killed. */
function holderProcess(path: string): Promise<ChildProcess> {
  const code = `
    const { acquireLock } = await import(${JSON.stringify(LOCK_MODULE)});
    acquireLock(${JSON.stringify(path)}, { command: "holder test" });
    console.log("locked");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("locked")) resolve(child);
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

describe("lock files", () => {
  test("a second taker is refused, naming the holder's pid; release frees the lock", () => {
    const path = join(tmp(), "locks", "agent.lock");
    const lock = acquireLock(path, { command: "first" });
    assert.equal(lock.holder.pid, process.pid);
    assert.throws(
      () => acquireLock(path, { command: "second", advice: "wait for it" }),
      (err: unknown) =>
        err instanceof LockHeldError &&
        err.holder?.pid === process.pid &&
        err.message.includes(`process ${process.pid}`) &&
        err.message.includes("(first, since") &&
        err.message.endsWith("; wait for it"),
    );
    lock.release();
    lock.release();
    assert.equal(existsSync(path), false);
    const again = acquireLock(path, { command: "third" });
    again.release();
    assert.deepEqual(readdirSync(join(path, "..")), [], "no temporary file left behind");
  });

  test("a lock held by another live process is refused; once that process is killed it is taken over", {
    timeout: 30_000,
  }, async () => {
    const path = join(tmp(), "agent.lock");
    const child = await holderProcess(path);
    try {
      assert.throws(
        () => acquireLock(path, { command: "me" }),
        (err: unknown) => err instanceof LockHeldError && err.holder?.pid === child.pid,
      );
    } finally {
      await killed(child);
    }
    const lock = acquireLock(path, { command: "me" });
    assert.equal(lock.holder.pid, process.pid);
    lock.release();
  });

  test("a reused pid is not the holder: a lock naming a live pid with another start time is stale", () => {
    const path = join(tmp(), "agent.lock");
    writeFileSync(
      path,
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        command: "an earlier process",
        started_at: "2020-01-01T00:00:00.000Z",
        proc_start: "1",
        token: "feedfacefeedface",
      }),
    );
    if (processStartTime(process.pid) === undefined) {
      // without /proc the start time cannot tell them apart, and a live pid must be respected
      assert.throws(() => acquireLock(path, { command: "me" }), LockHeldError);
      return;
    }
    const lock = acquireLock(path, { command: "me" });
    lock.release();
  });

  test("a lock of another host is never taken over; an unreadable one only once it is old", () => {
    const dir = tmp();
    const foreign = join(dir, "foreign.lock");
    writeFileSync(
      foreign,
      JSON.stringify({ pid: 1, host: "elsewhere", command: "x", started_at: "t", token: "abababababababab" }),
    );
    assert.throws(() => acquireLock(foreign, { command: "me" }), /held by process 1 on elsewhere/);
    const garbled = join(dir, "garbled.lock");
    writeFileSync(garbled, "");
    assert.throws(() => acquireLock(garbled, { command: "me" }), /unreadable lock file/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(garbled, old, old);
    acquireLock(garbled, { command: "me" }).release();
  });

  test("withLock waits for a holder that lets go and refuses after waitMs", () => {
    const path = join(tmp(), "short.lock");
    assert.equal(
      withLock(path, { command: "a" }, () => 42),
      42,
    );
    const held = acquireLock(path, { command: "holder" });
    const started = Date.now();
    assert.throws(() => withLock(path, { command: "b", waitMs: 30 }, () => 0), LockHeldError);
    assert.ok(Date.now() - started >= 30);
    held.release();
  });

  test("processAlive", () => {
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(0), false);
    assert.equal(processAlive(2 ** 22 + 12345), false);
  });

  test("sweepStaleTemps removes temporary files of dead processes only", () => {
    const dir = tmp();
    const dead = join(dir, `.lib.json.${2 ** 22 + 7}.0badc0de.tmp`);
    const live = join(dir, `.lib.json.${process.pid}.0badc0de.tmp`);
    const other = join(dir, "lib.json");
    for (const f of [dead, live, other]) writeFileSync(f, "x");
    assert.deepEqual(sweepStaleTemps(dir), [dead]);
    assert.deepEqual(readdirSync(dir).sort(), [`.lib.json.${process.pid}.0badc0de.tmp`, "lib.json"].sort());
    assert.deepEqual(sweepStaleTemps(join(dir, "missing")), []);
  });
});
