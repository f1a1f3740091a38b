import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateInbox } from "../../../src/recipes/email/inbox.ts";
import { formatToolResult } from "../../../src/recipes/email/prompt.ts";
import { renderEpisode, type Segment, transcriptText } from "../../../src/recipes/email/render.ts";
import {
  createEmailVocab,
  decodeTurn,
  EMAIL_CHARS,
  emailVocab,
  encodeEpisode,
  endOfTurnId,
  SYNTAX_PIECES,
} from "../../../src/recipes/email/tokenizer.ts";

const vocab = emailVocab();

describe("email vocabulary", () => {
  it("places specials first, then the newline, then printable ASCII", () => {
    assert.equal(vocab.padId, 0);
    assert.equal(vocab.bosId, 1);
    assert.equal(vocab.eosId, 2);
    assert.equal(vocab.unkId, 3);
    assert.equal(endOfTurnId(), 4);
    assert.equal(vocab.id(" "), 5);
    // 'A' is code 65, 33 places after the space.
    assert.equal(vocab.id("A"), 38);
    assert.deepEqual(vocab.tokens.slice(4, 4 + EMAIL_CHARS.length), EMAIL_CHARS);
    assert.deepEqual(createEmailVocab().tokens, vocab.tokens);
  });

  it("makes the syntax and the generator's words single tokens, and keeps the newline alone", () => {
    for (const p of SYNTAX_PIECES) assert.equal(vocab.encode(p).length, 1, p);
    const c = (t: string) => vocab.id(t);
    assert.deepEqual(vocab.encode('answer("Oskar Mensah", sources="e3")'), [
      c('answer("'),
      c("Oskar"),
      c(" Mensah"),
      c('", sources="'),
      c("e"),
      c("3"),
      c('")'),
    ]);
    // A space belongs to the word after it: a name is one token per name wherever it stands.
    assert.deepEqual(vocab.encode("Oskar Mensah will lead"), [
      c("Oskar"),
      c(" Mensah"),
      c(" will"),
      c(" lead"),
    ]);
    // Search keywords are the question's words in lower case.
    assert.equal(vocab.encode("juniper").length, 1);
    assert.equal(vocab.encode("Juniper").length, 1);
    const withNewline = vocab.tokens.filter((t) => t.includes("\n"));
    assert.deepEqual(withNewline, ["\n"]);
  });

  it("makes each part of a date or an amount one token, its separator included", () => {
    const pieces = (text: string) => vocab.encode(text).map((id) => vocab.token(id));
    assert.deepEqual(pieces("$18,200"), ["$", "18", ",200"]);
    assert.deepEqual(pieces("$800"), ["$", "800"]);
    assert.deepEqual(pieces("2024-06-20"), ["2024", "-06", "-20"]);
    assert.deepEqual(pieces("June 8, 2025"), ["June", " 8", ", 2025"]);
    assert.deepEqual(pieces("is 19 October 2024."), ["is", " 19", " October", " 2024", "."]);
    // Numbers the generator never writes still encode, losslessly.
    assert.equal(vocab.decode(vocab.encode("12345.67")), "12345.67");
  });

  it("never splits a word the generator writes, over many inboxes", () => {
    const rng = new Rng(5);
    const split = new Set<string>();
    for (let k = 0; k < 60; k++) {
      const { inbox, questions } = generateInbox(
        rng,
        `w${k}`,
        k % 2 ? {} : { projects: 1, factsPerProject: 1 },
      );
      const texts = inbox.emails.flatMap((e) => [e.from, ...e.to, e.subject, e.body]);
      texts.push(...questions.map((q) => q.question), ...questions.flatMap((q) => q.keywords));
      for (const t of texts) {
        const cuts = new Set<number>();
        let at = 0;
        for (const id of vocab.encode(t)) {
          at += vocab.token(id).length;
          cuts.add(at);
        }
        for (const m of t.matchAll(/[A-Za-z]+/g))
          for (let i = m.index + 1; i < m.index + m[0].length; i++) if (cuts.has(i)) split.add(m[0]);
      }
    }
    assert.deepEqual([...split], []);
  });
});

describe("encodeEpisode", () => {
  it("masks exactly the policy segments (hand-computed)", () => {
    const segments: Segment[] = [
      { role: "prompt", text: "Q\n" },
      { role: "policy", text: "ab\n" },
      { role: "tool", text: "x\n" },
      { role: "policy", text: "c\n" },
    ];
    const { ids, mask } = encodeEpisode(segments);
    const c = (ch: string) => vocab.id(ch);
    assert.deepEqual(ids, [c("Q"), 4, c("a"), c("b"), 4, c("x"), 4, c("c"), 4]);
    assert.deepEqual(mask, [0, 0, 1, 1, 1, 0, 0, 1, 1]);
  });

  it("rejects an unknown role naming the segment", () => {
    const bad = [
      { role: "prompt", text: "a" },
      { role: "user", text: "b" },
    ] as unknown as Segment[];
    assert.throws(() => encodeEpisode(bad), /segment 1 has unknown role "user"/);
  });

  it("gives the same ids and mask in one pass or turn by turn, on random demonstration episodes", () => {
    const rng = new Rng(11);
    for (let k = 0; k < 12; k++) {
      const { inbox, questions } = generateInbox(rng, `in${k}`, {
        projects: 2,
        factsPerProject: 2,
        fillerEmails: 3,
      });
      const question = rng.pick(questions);
      const turns = demonstration(question, inbox, rng, { noise: 0.5 });
      const prompt = new EmailEpisode(inbox, question).prompt;
      const whole = encodeEpisode(renderEpisode(turns, prompt));

      // Turn by turn, as a rollout builds its context.
      const ids = vocab.encode(`${prompt}\n`);
      const mask: number[] = ids.map(() => 0);
      for (const t of turns) {
        const p = vocab.encode(`${t.policy}\n`);
        ids.push(...p);
        mask.push(...p.map(() => 1));
        if (t.toolResult !== null) {
          const r = vocab.encode(`${formatToolResult(t.toolResult)}\n`);
          ids.push(...r);
          mask.push(...r.map(() => 0));
        }
      }
      assert.deepEqual(whole.ids, ids, `episode ${k}`);
      assert.deepEqual(whole.mask, mask, `episode ${k}`);
      // No token spans a newline, and every segment ends with one: the transcript encodes the same way.
      assert.deepEqual(vocab.encode(transcriptText(renderEpisode(turns, prompt))), whole.ids);
      // The generated task never needs unk, and decoding gives the transcript back.
      assert.ok(!whole.ids.includes(vocab.unkId!), `episode ${k} has a character outside the vocabulary`);
      assert.equal(vocab.decode(whole.ids), transcriptText(renderEpisode(turns, prompt)));
      const policyCount = renderEpisode(turns, prompt)
        .filter((s) => s.role === "policy")
        .reduce((n, s) => n + vocab.encode(s.text).length, 0);
      assert.equal(
        whole.mask.reduce((a, b) => a + b, 0),
        policyCount,
      );
    }
  });
});

describe("decodeTurn", () => {
  it("stops at the end-of-turn token and drops specials", () => {
    const ids = [...vocab.encode("read_email(id=e1)"), 2, 4, ...vocab.encode("junk")];
    assert.equal(decodeTurn(ids), "read_email(id=e1)");
    assert.equal(decodeTurn(vocab.encode("no newline")), "no newline");
    assert.equal(decodeTurn([4]), "");
  });
});
