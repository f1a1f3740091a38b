import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { assertWritableDir } from "../../src/io/writable.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-writable-");

describe("assertWritableDir", () => {
  it("makes a missing directory with its parents and leaves no probe behind", () => {
    const dir = join(tmp(), "a", "b");
    assertWritableDir(dir, "--output-dir");
    assert.ok(statSync(dir).isDirectory());
    assert.deepEqual(readdirSync(dir), []);
  });

  it("refuses a file, and a directory under a file, naming the flag", () => {
    const file = join(tmp(), "run");
    writeFileSync(file, "");
    assert.throws(
      () => assertWritableDir(file, "--output-dir"),
      new RegExp(`^Error: --output-dir ${file}: is a file, not a directory; choose another --output-dir$`),
    );
    assert.throws(
      () => assertWritableDir(join(file, "sub"), "--workdir"),
      new RegExp(`--workdir ${file}/sub: ${file} is a file, not a directory`),
    );
  });

  it("refuses a directory that cannot take a file", (t) => {
    // root writes through permission bits, so as root take a place no one may write: /sys
    let dir: string;
    if (process.getuid?.() === 0) {
      if (!existsSync("/sys")) return t.skip("running as root without /sys: no unwritable place to try");
      dir = "/sys/grpo-write-check";
    } else {
      dir = join(tmp(), "read-only");
      mkdirSync(dir, { mode: 0o500 });
    }
    assert.throws(
      () => assertWritableDir(dir, "--output-dir"),
      /--output-dir .*: (cannot be created|is not writable) \(/,
    );
  });
});
