import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  ExperienceLibrary,
  jaccard,
  type LibraryIdentity,
  MAX_EXPERIENCE_CHARS,
  MAX_EXPERIENCE_WORDS,
  wordCount,
} from "../../src/training-free/experience-library.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("experience-library-");

const G1: LibraryIdentity = { agent: "generator_1", idPrefix: "G1" };
const G2: LibraryIdentity = { agent: "generator_2", idPrefix: "G2" };
const G3: LibraryIdentity = { agent: "generator_3", idPrefix: "G3" };
const C: LibraryIdentity = { agent: "critic", idPrefix: "C" };

const fixedNow = () => new Date("2026-01-02T03:04:05.000Z");

describe("experience library operations", () => {
  test("ids follow the library's prefix, are zero-padded and never reused after a delete", () => {
    const lib = ExperienceLibrary.empty(join(tmp(), "g2.json"), G2);
    const r1 = lib.apply(
      [
        { operation: "add", content: "Draw the graph before computing anything" },
        { operation: "add", content: "State units of every known quantity" },
      ],
      { problemId: "p1", now: fixedNow },
    );
    assert.deepEqual(r1.added, ["G2-001", "G2-002"]);
    lib.apply([{ operation: "delete", id: "G2-002" }], { problemId: "p2", now: fixedNow });
    const r3 = lib.apply([{ operation: "add", content: "Check the plan reaches the target" }], {
      problemId: "p3",
    });
    assert.deepEqual(r3.added, ["G2-003"]);
  });

  test("a prefix is matched literally: ids that only look like it never advance the count", () => {
    const path = join(tmp(), "dotted.json");
    writeFileSync(
      path,
      JSON.stringify([
        { id: "A.B-001", content: "one" },
        { id: "AxB-009", content: "not of this prefix" },
      ]),
    );
    const lib = ExperienceLibrary.load(path, { agent: "dotted", idPrefix: "A.B" });
    assert.equal(lib.nextId(), "A.B-002");
  });

  test("entries carry the required fields; modify/keep/delete update them and the history", () => {
    const lib = ExperienceLibrary.empty(join(tmp(), "g1.json"), G1);
    lib.apply([{ operation: "add", content: "Name  every\nintermediate quantity", category: "naming" }], {
      problemId: "aime_001",
      problemType: "aime2024",
      now: fixedNow,
    });
    assert.deepEqual(lib.get("G1-001"), {
      id: "G1-001",
      content: "Name every intermediate quantity",
      category: "naming",
      source_problem: "aime_001",
      created_at: "2026-01-02T03:04:05.000Z",
      success_count: 0,
      usage_count: 0,
      problem_type: "aime2024",
    });
    const rep = lib.apply(
      [
        { operation: "keep", id: "G1-001" },
        { operation: "modify", id: "G1-001", content: "Give every intermediate quantity a short name" },
      ],
      { problemId: "aime_002", now: fixedNow },
    );
    assert.deepEqual(rep.kept, ["G1-001"]);
    assert.deepEqual(rep.modified, ["G1-001"]);
    assert.equal(lib.get("G1-001")!.success_count, 1);
    assert.equal(lib.get("G1-001")!.content, "Give every intermediate quantity a short name");
    lib.markUsed();
    assert.equal(lib.get("G1-001")!.usage_count, 1);
    lib.apply([{ operation: "delete", id: "G1-001" }], { problemId: "aime_003", now: fixedNow });
    assert.equal(lib.entries().length, 0);
    assert.deepEqual(
      lib.operationHistory().map((h) => [h.action, h.id, h.problem_id]),
      [
        ["added", "G1-001", "aime_001"],
        ["modified", "G1-001", "aime_002"],
        ["deleted", "G1-001", "aime_003"],
      ],
    );
    assert.equal(lib.operationHistory()[1]!.previous, "Name every intermediate quantity");
  });

  test("unknown ids are ignored with a warning and change nothing", () => {
    const lib = ExperienceLibrary.empty("unused.json", C);
    const rep = lib.apply(
      [
        { operation: "modify", id: "C-404", content: "x" },
        { operation: "delete", id: "C-405" },
        { operation: "keep", id: "C-406" },
      ],
      { problemId: "p" },
    );
    assert.deepEqual(rep.warnings, [
      "critic: modify of unknown experience id C-404 ignored",
      "critic: delete of unknown experience id C-405 ignored",
      "critic: keep of unknown experience id C-406 ignored",
    ]);
    assert.equal(lib.entries().length, 0);
    assert.equal(lib.operationHistory().length, 0);
  });

  test(`lessons over ${MAX_EXPERIENCE_WORDS} words are rejected (add and modify), exactly ${MAX_EXPERIENCE_WORDS} pass`, () => {
    const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
    const lib = ExperienceLibrary.empty("unused.json", G3);
    const rep = lib.apply(
      [
        { operation: "add", content: words(33) },
        { operation: "add", content: words(32) },
      ],
      { problemId: "p" },
    );
    assert.deepEqual(rep.added, ["G3-001"]);
    assert.equal(rep.warnings.length, 1);
    assert.match(rep.warnings[0]!, /33 words \(max 32\)/);
    const rep2 = lib.apply([{ operation: "modify", id: "G3-001", content: words(50) }], { problemId: "p" });
    assert.match(rep2.warnings[0]!, /^generator_3: modify on problem p rejected, lesson has 50 words/);
    assert.equal(wordCount(lib.get("G3-001")!.content), 32);
  });

  test("lessons over 300 characters are rejected too: one 100 000-character word is not a lesson", () => {
    const lib = ExperienceLibrary.empty("unused.json", G1);
    const rep = lib.apply(
      [
        { operation: "add", content: "x".repeat(100_000) },
        { operation: "add", content: `${"y".repeat(299)}z` },
        { operation: "add", content: "q".repeat(301) },
      ],
      { problemId: "aime_007" },
    );
    assert.deepEqual(rep.added, ["G1-001"]);
    assert.equal(lib.get("G1-001")!.content.length, 300);
    assert.deepEqual(
      rep.warnings.map((w) => w.slice(0, w.indexOf(":", 14))),
      [
        "generator_1: add on problem aime_007 rejected, lesson has 100000 characters (max 300)",
        "generator_1: add on problem aime_007 rejected, lesson has 301 characters (max 300)",
      ],
    );
  });

  test("both limits are configurable per library and checked", () => {
    const lib = ExperienceLibrary.empty("unused.json", G2, { limits: { maxWords: 3, maxChars: 20 } });
    assert.deepEqual(lib.limits, { maxWords: 3, maxChars: 20 });
    const rep = lib.apply(
      [
        { operation: "add", content: "one two three four" },
        { operation: "add", content: "abcdefghijkl mnopqrstuvwxyz" },
        { operation: "add", content: "short and sweet" },
      ],
      { problemId: "p9" },
    );
    assert.deepEqual(rep.added, ["G2-001"]);
    assert.match(rep.warnings[0]!, /4 words \(max 3\)/);
    assert.match(rep.warnings[1]!, /27 characters \(max 20\)/);
    assert.throws(
      () => ExperienceLibrary.empty("x", G2, { limits: { maxWords: 0 } }),
      /limits\.maxWords must be an integer ≥ 1/,
    );
  });

  test("near-duplicates (token-set Jaccard ≥ 0.8) are merged, not added", () => {
    assert.equal(jaccard("a b c d", "a b c d"), 1);
    assert.equal(jaccard("a b c d", "a b c e"), 3 / 5);
    assert.equal(jaccard("Check the UNITS!", "check the units"), 1);
    const lib = ExperienceLibrary.empty("unused.json", G1);
    lib.apply([{ operation: "add", content: "always check the units of each known quantity first" }], {
      problemId: "p1",
    });
    // 9 shared tokens of 10 in the union: 0.9 ≥ 0.8
    const rep = lib.apply(
      [{ operation: "add", content: "Always check the units of each known quantity first please" }],
      {
        problemId: "p2",
      },
    );
    assert.deepEqual(rep.added, []);
    assert.deepEqual(rep.merged, ["G1-001"]);
    assert.equal(lib.entries().length, 1);
    assert.equal(lib.get("G1-001")!.success_count, 1);
    // a modify that turns one lesson into a copy of another removes the rewritten one
    lib.apply([{ operation: "add", content: "draw the causal graph before the plan" }], { problemId: "p3" });
    const rep2 = lib.apply(
      [{ operation: "modify", id: "G1-002", content: "always check the units of each known quantity first" }],
      { problemId: "p4" },
    );
    assert.deepEqual(rep2.merged, ["G1-002"]);
    assert.deepEqual(
      lib.entries().map((e) => e.id),
      ["G1-001"],
    );
    // the folded add leaves the size alone; the rewrite removes a lesson, so it is a "deleted"
    assert.deepEqual(
      lib.operationHistory().map((h) => [h.action, h.id, h.into]),
      [
        ["added", "G1-001", undefined],
        ["merged", "G1-001", "G1-001"],
        ["added", "G1-002", undefined],
        ["deleted", "G1-002", "G1-001"],
      ],
    );
  });
});

describe("library files", () => {
  test("save is atomic (no temp file left) and load round-trips entries and history", () => {
    const dir = tmp();
    const path = join(dir, "data", "grpo_experiences", "generator_1_experiences.json");
    const lib = ExperienceLibrary.empty(path, G1);
    lib.apply([{ operation: "add", content: "one lesson" }], { problemId: "p", now: fixedNow });
    lib.save();
    assert.deepEqual(readdirSync(join(dir, "data", "grpo_experiences")), ["generator_1_experiences.json"]);
    const back = ExperienceLibrary.load(path, G1);
    assert.deepEqual(back.toJSON(), lib.toJSON());
    assert.equal(JSON.parse(readFileSync(path, "utf8")).agent, "generator_1");
  });

  test("saveAsync snapshots at call time and chained saves end with the newest snapshot", async () => {
    const dir = tmp();
    const path = join(dir, "data", "grpo_experiences", "generator_2_experiences.json");
    const lib = ExperienceLibrary.empty(path, G2);
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 5; i++) {
      lib.apply([{ operation: "add", content: `lesson number ${i} about units` }], {
        problemId: `p${i}`,
        now: fixedNow,
      });
      saves.push(lib.saveAsync());
    }
    // The first save's snapshot holds one entry even though four more were added before it ran.
    await saves[0];
    const afterFirst = JSON.parse(readFileSync(path, "utf8")).experiences.length;
    assert.ok(afterFirst >= 1 && afterFirst <= 5);
    await Promise.all(saves);
    assert.deepEqual(ExperienceLibrary.load(path, G2).toJSON(), lib.toJSON());
    assert.equal(lib.entries().length, 5);
    assert.deepEqual(readdirSync(join(dir, "data", "grpo_experiences")), ["generator_2_experiences.json"]);
  });

  test("a failed saveAsync rejects its caller and later saves still land", async () => {
    const dir = tmp();
    // A directory where the file should be: the rename fails.
    const blocked = join(dir, "blocked.json");
    const lib = ExperienceLibrary.empty(blocked, C);
    lib.apply([{ operation: "add", content: "first" }], { problemId: "p" });
    mkdirSync(join(blocked, "inside"), { recursive: true });
    await assert.rejects(lib.saveAsync());
    assert.deepEqual(readdirSync(dir), ["blocked.json"], "no temp file left behind");
    rmSync(blocked, { recursive: true });
    lib.apply([{ operation: "add", content: "second" }], { problemId: "q" });
    await lib.saveAsync();
    assert.equal(ExperienceLibrary.load(blocked, C).entries().length, 2);
  });

  test("older layouts load: a bare list and an object keyed by id; a missing file is empty", () => {
    const dir = tmp();
    const a = join(dir, "a.json");
    writeFileSync(a, JSON.stringify([{ id: "G1-007", content: "legacy" }]));
    const libA = ExperienceLibrary.load(a, G1);
    assert.equal(libA.get("G1-007")!.content, "legacy");
    assert.equal(libA.get("G1-007")!.success_count, 0);
    assert.equal(libA.nextId(), "G1-008");
    const b = join(dir, "b.json");
    writeFileSync(b, JSON.stringify({ "C-002": { content: "keyed", category: "fusion" } }));
    assert.equal(ExperienceLibrary.load(b, C).get("C-002")!.category, "fusion");
    assert.equal(ExperienceLibrary.load(join(dir, "none.json"), C).entries().length, 0);
  });

  test("bad files fail with the file and the field", () => {
    const dir = tmp();
    const p = join(dir, "bad.json");
    writeFileSync(p, JSON.stringify({ experiences: [{ id: "G1-001", content: "ok" }, { id: "G1-002" }] }));
    assert.throws(() => ExperienceLibrary.load(p, G1), /bad\.json \(field experiences\[1\]\.content\)/);
    writeFileSync(p, "{nope");
    assert.throws(() => ExperienceLibrary.load(p, G1), /bad\.json: invalid JSON/);
  });

  test("two lessons under one id are refused, naming both places; a keyed entry must not claim another id", () => {
    const dir = tmp();
    const p = join(dir, "dup.json");
    writeFileSync(
      p,
      JSON.stringify({
        experiences: [
          { id: "G1-001", content: "one" },
          { id: "G1-002", content: "two" },
          { id: "G1-001", content: "three" },
        ],
      }),
    );
    assert.throws(
      () => ExperienceLibrary.load(p, G1),
      /dup\.json \(field experiences\[2\]\.id\): duplicate id G1-001 \(also experiences\[0\]\)/,
    );
    const k = join(dir, "keyed.json");
    writeFileSync(k, JSON.stringify({ "C-001": { id: "C-009", content: "x" } }));
    assert.throws(
      () => ExperienceLibrary.load(k, C),
      /keyed\.json \(field C-001\.id\): id "C-009" differs from its key/,
    );
  });
});

describe("lesson limits, rendering and loading without an identity", () => {
  test("a lesson over the character limit is rejected even with few words; both limits are configurable", () => {
    const lib = ExperienceLibrary.empty(undefined, { agent: "a", idPrefix: "A" });
    assert.deepEqual(lib.limits, { maxWords: MAX_EXPERIENCE_WORDS, maxChars: MAX_EXPERIENCE_CHARS });
    const long = "x".repeat(MAX_EXPERIENCE_CHARS + 1);
    const rep = lib.apply(
      [
        { operation: "add", content: long },
        { operation: "add", content: "x".repeat(MAX_EXPERIENCE_CHARS) },
      ],
      { problemId: "p9" },
    );
    assert.deepEqual(rep.added, ["A-001"]);
    assert.equal(
      rep.warnings[0]!,
      `a: add on problem p9 rejected, lesson has ${MAX_EXPERIENCE_CHARS + 1} characters (max ${MAX_EXPERIENCE_CHARS}): "${"x".repeat(60)}…"`,
    );
    const tight = ExperienceLibrary.empty(undefined, { limits: { maxWords: 3, maxChars: 20 } });
    const r2 = tight.apply(
      [
        { operation: "add", content: "one two three four" },
        { operation: "add", content: "one two threeeeeeeeeeeeeee" },
        { operation: "add", content: "one two three" },
      ],
      { problemId: "p" },
    );
    assert.deepEqual(r2.added, ["L-001"]);
    assert.match(r2.warnings[0]!, /4 words \(max 3\)/);
    assert.match(r2.warnings[1]!, /26 characters \(max 20\)/);
    assert.throws(
      () => ExperienceLibrary.empty(undefined, { limits: { maxWords: 0 } }),
      /maxWords must be an integer ≥ 1/,
    );
  });

  test("render gives one [id] lesson per line, extra ones after, and the empty string when empty", () => {
    const lib = ExperienceLibrary.inMemory({ agent: "a" }, [
      { id: "A-001", content: "First." },
      { id: "A-002", content: "Second." },
    ]);
    assert.equal(lib.render(), "[A-001] First.\n[A-002] Second.");
    assert.equal(
      lib.render([{ ...lib.get("A-001")!, id: "S-001", content: "Shared." }]),
      "[A-001] First.\n[A-002] Second.\n[S-001] Shared.",
    );
    assert.equal(ExperienceLibrary.inMemory().render(), "");
    assert.equal(ExperienceLibrary.inMemory().formatForPrompt(), "(none yet)");
  });

  test("load(path) alone: the agent is the file's, the id prefix the one its ids use", () => {
    const dir = tmp();
    const p = join(dir, "solver_experiences.json");
    writeFileSync(
      p,
      JSON.stringify({
        agent: "solver",
        experiences: [
          { id: "SV-004", content: "a" },
          { id: "SV-009", content: "b" },
        ],
      }),
    );
    const lib = ExperienceLibrary.load(p);
    assert.equal(lib.agent, "solver");
    assert.equal(lib.nextId(), "SV-010");
    const bare = join(dir, "plain.json");
    writeFileSync(bare, JSON.stringify([{ id: "x", content: "c" }]));
    assert.equal(ExperienceLibrary.load(bare).agent, "plain");
    assert.equal(ExperienceLibrary.load(bare).nextId(), "L-001");
  });

  test("restore and snapshot copy, so a recorded state is not changed by later updates", () => {
    const lib = ExperienceLibrary.inMemory({ agent: "a", idPrefix: "A" });
    lib.apply([{ operation: "add", content: "one" }], { problemId: "p", now: fixedNow });
    const snap = lib.snapshot();
    lib.apply([{ operation: "modify", id: "A-001", content: "two" }], { problemId: "q", now: fixedNow });
    assert.equal(snap.experiences[0]!.content, "one");
    lib.restore(snap);
    assert.equal(lib.get("A-001")!.content, "one");
    assert.equal(lib.operationHistory().length, 1);
    lib.apply([{ operation: "add", content: "three" }], { problemId: "r", now: fixedNow });
    assert.equal(snap.experiences.length, 1);
  });
});
