import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateInbox } from "../../../src/recipes/email/inbox.ts";
import { buildPrompt } from "../../../src/recipes/email/prompt.ts";
import { renderEpisode, tokenMask, transcriptText } from "../../../src/recipes/email/render.ts";
import { inbox, question } from "./fixtures.ts";

const charCodes = (text: string) => [...text].map((c) => c.codePointAt(0)!);

/** A random policy turn: valid calls of each tool, and each kind of malformed text. */
function randomTurn(rng: Rng): string {
  const k = rng.int(8);
  if (k === 0) return `search_emails(keywords="${rng.pick(["apollo", "review", "offsite", "lunch"])}")`;
  if (k === 1) return `read_email(id=e${1 + rng.int(7)})`;
  if (k === 2) return `{"tool": "search", "args": {"keywords": ["apollo"]}}`;
  if (k === 3) return "let me think";
  if (k === 4) return "forward_email(id=e1)";
  if (k === 5) return "read_email(id=abc)";
  if (k === 6) return `answer("${rng.pick(["2024-05-03", "I don't know", "May 4, 2024"])}")`;
  return `  read(${1 + rng.int(5)})  \n`;
}

describe("renderEpisode", () => {
  it("renders prompt, policy lines and fenced tool results", () => {
    const ep = new EmailEpisode(inbox, question);
    ep.step("search(offsite)");
    ep.step('answer("I don\'t know")');
    const segments = renderEpisode(ep.history, buildPrompt(question, { instructions: false }));
    assert.deepEqual(segments, [
      { role: "prompt", text: "Question: When is the Apollo design review?\n" },
      { role: "policy", text: "search(offsite)\n" },
      {
        role: "tool",
        text: "<result>\ne3 | 2024-04-03 | Q3 offsite approved | I approved $1,200 for the Apollo Q3 offsite.\n</result>\n",
      },
      { role: "policy", text: 'answer("I don\'t know")\n' },
    ]);
  });

  it("property: tool results are only ever in tool segments, and the mask covers exactly the policy text", () => {
    const rng = new Rng(42);
    for (let trial = 0; trial < 300; trial++) {
      const ep = new EmailEpisode(inbox, question, {
        maxTurns: 1 + rng.int(10),
        maxToolErrors: 1 + rng.int(4),
      });
      while (!ep.done) ep.step(randomTurn(rng));
      const segments = renderEpisode(ep.history, buildPrompt(question));
      assert.equal(segments[0]!.role, "prompt");
      assert.equal(segments.filter((s) => s.role === "prompt").length, 1);
      const tools = segments.filter((s) => s.role === "tool").map((s) => s.text);
      const results = ep.history.filter((t) => t.toolResult !== null).map((t) => t.toolResult!);
      assert.equal(tools.length, results.length);
      assert.deepEqual(
        tools,
        results.map((r) => `<result>\n${r}\n</result>\n`),
      );
      for (const s of segments) {
        if (s.role === "policy")
          assert.ok(!s.text.includes("<result>"), "a policy segment holds a tool result");
      }
      const policies = segments.filter((s) => s.role === "policy");
      assert.equal(policies.length, ep.turns);
      const { ids, mask } = tokenMask(segments, charCodes);
      const text = transcriptText(segments);
      assert.equal(ids.length, [...text].length);
      // Walk the segments: every character of a tool or prompt segment is masked out.
      let pos = 0;
      for (const s of segments) {
        const n = [...s.text].length;
        const expected = s.role === "policy" ? 1 : 0;
        assert.ok(
          mask.slice(pos, pos + n).every((m) => m === expected),
          `trial ${trial}: ${s.role} mask`,
        );
        pos += n;
      }
      assert.equal(
        mask.reduce((a, b) => a + b, 0),
        policies.reduce((a, s) => a + [...s.text].length, 0),
      );
    }
  });

  it("renders demonstrations of generated inboxes with the last turn a policy turn", () => {
    const { inbox: gen, questions } = generateInbox(new Rng(5), "r");
    const rng = new Rng(6);
    for (const q of questions) {
      const segments = renderEpisode(demonstration(q, gen, rng, { noise: 0.3 }), buildPrompt(q));
      assert.equal(segments.at(-1)!.role, "policy");
      assert.match(segments.at(-1)!.text, /^answer\(/);
      assert.ok(segments.slice(1).every((s, i) => s.role === (i % 2 === 0 ? "policy" : "tool")));
    }
  });
});

describe("EmailEpisode.render", () => {
  it("matches renderEpisode with the episode's prompt, and omits the prompt when none is given", () => {
    const ep = new EmailEpisode(inbox, question);
    ep.step("search(apollo)");
    assert.deepEqual(ep.render(), renderEpisode(ep.history, buildPrompt(question)));
    assert.equal(ep.render()[0]!.text, `${ep.prompt}\n`);
    assert.deepEqual(
      renderEpisode(ep.history).map((s) => s.role),
      ["policy", "tool"],
    );
  });
});
