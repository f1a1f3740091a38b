import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { answerAppearsIn, answersMatch } from "../../../src/recipes/email/answer.ts";
import { generateDataset, generateInbox } from "../../../src/recipes/email/inbox.ts";
import { keywordStems, searchEmails, stem, words } from "../../../src/recipes/email/search.ts";

const PINNED_FIRST_EMAIL = {
  id: "e1",
  from: "Dana Raman <dana.raman@northwind.example>",
  to: ["Iris Okafor <iris.okafor@northwind.example>", "Chloe Castillo <chloe.castillo@northwind.example>"],
  date: "2024-01-14T09:01:00Z",
  subject: "Lumen budget proposal deadline",
  body: "The final deadline for the Lumen budget proposal is 21 January 2024. Dana",
};

describe("generateInbox", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    const a = generateInbox(new Rng(7), "x");
    const b = generateInbox(new Rng(7), "x");
    const c = generateInbox(new Rng(8), "x");
    assert.deepEqual(a, b);
    // Pinned: a change of generator silently changes every stored dataset, so it must show here.
    assert.deepEqual(a.inbox.emails[0], PINNED_FIRST_EMAIL);
    assert.notDeepEqual(a.inbox.emails, c.inbox.emails);
    assert.notDeepEqual(
      a.questions.map((q) => q.question),
      c.questions.map((q) => q.question),
    );
  });

  it("validates its options", () => {
    assert.throws(
      () => generateInbox(new Rng(1), "x", { projects: 25 }),
      /projects must be an integer in \[0, 24\]/,
    );
    assert.throws(() => generateInbox(new Rng(1), "x", { factsPerProject: -1 }), /factsPerProject/);
    assert.throws(() => generateInbox(new Rng(1), "x", { fillerEmails: 1.5 }), /fillerEmails/);
    const small = generateInbox(new Rng(1), "x", { projects: 2, factsPerProject: 5, fillerEmails: 0 });
    assert.equal(small.questions.length, 10);
    assert.deepEqual(new Set(small.questions.map((q) => q.kind)).size, 5);
  });

  it("builds well-formed emails: unique ids in date order, ISO dates, addresses", () => {
    for (let seed = 0; seed < 20; seed++) {
      const { inbox, questions } = generateInbox(new Rng(seed), `s${seed}`);
      assert.equal(questions.length, 12);
      const ids = inbox.emails.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length);
      assert.deepEqual(
        ids,
        ids.map((_, k) => `e${k + 1}`),
      );
      for (let k = 0; k < inbox.emails.length; k++) {
        const e = inbox.emails[k]!;
        assert.match(e.date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
        if (k > 0) assert.ok(inbox.emails[k - 1]!.date <= e.date, `${e.id} out of date order`);
        assert.match(e.from, /^[A-Z][a-z]+ [A-Z][a-z]+ <[a-z.]+@[a-z]+\.example>$/);
        assert.ok(e.to.length > 0 && !e.to.includes(e.from), `${e.id} recipients`);
      }
      const texts = new Set(questions.map((q) => q.question));
      assert.equal(texts.size, questions.length, "questions are unique within an inbox");
    }
  });

  it("puts every answer in its source emails, and no decoy equals the answer", () => {
    for (let seed = 0; seed < 40; seed++) {
      const { inbox, questions } = generateInbox(new Rng(seed), `s${seed}`);
      for (const q of questions) {
        assert.ok(q.sourceIds.length >= 1 && q.sourceIds.length <= 2, q.id);
        const sources = q.sourceIds.map((id) => inbox.emails.find((e) => e.id === id));
        assert.ok(
          sources.every((e) => e !== undefined),
          `${q.id} cites a missing email`,
        );
        const text = sources.map((e) => `${e!.subject}\n${e!.body}`).join("\n");
        assert.ok(answerAppearsIn(q.answer, text), `${q.id}: "${q.answer}" not in ${text}`);
        for (const d of q.decoys)
          assert.ok(!answersMatch(q.answer, d), `${q.id}: decoy ${d} equals the answer`);
      }
    }
  });

  it("adds distractors: another email shares at least two of the question's keywords", () => {
    let twoSource = 0;
    for (let seed = 0; seed < 30; seed++) {
      const { inbox, questions } = generateInbox(new Rng(seed), `s${seed}`);
      for (const q of questions) {
        if (q.sourceIds.length === 2) twoSource++;
        const stems = new Set(keywordStems(q.keywords));
        const rivals = inbox.emails.filter((e) => {
          if (q.sourceIds.includes(e.id)) return false;
          const found = new Set(
            words(`${e.subject} ${e.body}`)
              .map(stem)
              .filter((s) => stems.has(s)),
          );
          return found.size >= 2;
        });
        assert.ok(rivals.length > 0, `${q.id} has no distractor`);
        // A decoy is stated in some non-source email: a wrong answer is really on offer.
        const others = inbox.emails.filter((e) => !q.sourceIds.includes(e.id)).map((e) => e.body);
        assert.ok(
          q.decoys.some((d) => others.some((b) => answerAppearsIn(d, b))),
          `${q.id} decoys absent`,
        );
      }
    }
    assert.ok(twoSource > 20, `expected many two-email questions, got ${twoSource}`);
  });

  it("ranks a source email in the top 3 for the scripted keywords", () => {
    let total = 0;
    let first = 0;
    for (let seed = 100; seed < 150; seed++) {
      const { inbox, questions } = generateInbox(new Rng(seed), `s${seed}`);
      for (const q of questions) {
        const top = searchEmails(inbox, { keywords: q.keywords, max_results: 3 }).map((h) => h.id);
        assert.ok(
          q.sourceIds.some((id) => top.includes(id)),
          `${q.id} "${q.question}": sources ${q.sourceIds} not in ${top}`,
        );
        total++;
        if (q.sourceIds.includes(top[0]!)) first++;
      }
    }
    // Not always first: distractors make reading necessary.
    assert.ok(first < total, "some distractor should outrank a source");
  });
});

describe("generateDataset", () => {
  it("returns the requested sizes with disjoint train and held-out questions and inboxes", () => {
    const ds = generateDataset(new Rng(3), { trainSize: 50, evalSize: 20 });
    assert.equal(ds.train.length, 50);
    assert.equal(ds.eval.length, 20);
    const trainIds = new Set(ds.train.map((q) => q.id));
    assert.ok(ds.eval.every((q) => !trainIds.has(q.id)));
    const trainInboxes = new Set(ds.train.map((q) => q.inboxId));
    assert.ok(ds.eval.every((q) => !trainInboxes.has(q.inboxId)));
    for (const q of [...ds.train, ...ds.eval]) assert.ok(ds.inboxes.has(q.inboxId), q.inboxId);
    assert.equal(new Set(ds.train.map((q) => q.id)).size, 50);
  });

  it("draws demonstration questions from inboxes of their own without changing the other splits", () => {
    const plain = generateDataset(new Rng(6), { trainSize: 20, evalSize: 10 });
    const ds = generateDataset(new Rng(6), { trainSize: 20, evalSize: 10, demoSize: 15 });
    assert.equal(plain.demos.length, 0);
    assert.equal(ds.demos.length, 15);
    assert.deepEqual(ds.train, plain.train);
    assert.deepEqual(ds.eval, plain.eval);
    const others = new Set([...ds.train, ...ds.eval].map((q) => q.inboxId));
    assert.ok(ds.demos.every((q) => !others.has(q.inboxId) && ds.inboxes.has(q.inboxId)));
    assert.throws(() => generateDataset(new Rng(1), { trainSize: 1, evalSize: 1, demoSize: -2 }), /demoSize/);
  });

  it("is deterministic and rejects bad sizes", () => {
    const a = generateDataset(new Rng(4), { trainSize: 10, evalSize: 5 });
    const b = generateDataset(new Rng(4), { trainSize: 10, evalSize: 5 });
    const c = generateDataset(new Rng(5), { trainSize: 10, evalSize: 5 });
    assert.deepEqual(a.train, b.train);
    assert.deepEqual(a.eval, b.eval);
    assert.notDeepEqual(a.train, c.train);
    assert.throws(() => generateDataset(new Rng(1), { trainSize: -1, evalSize: 1 }), /trainSize/);
    assert.throws(() => generateDataset(new Rng(1), { trainSize: 1, evalSize: 1.5 }), /evalSize/);
    assert.throws(
      () => generateDataset(new Rng(1), { trainSize: 1, evalSize: 1, projects: 0 }),
      /no questions/,
    );
  });
});
