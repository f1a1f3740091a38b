import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import {
  answerInInbox,
  classifyEpisode,
  countErrors,
  ERROR_CLASSES,
  wellFormedAnswer,
} from "../../../src/recipes/email/errors.ts";
import { inbox, question } from "./fixtures.ts";

function classify(turns: string[]) {
  const ep = new EmailEpisode(inbox, question);
  for (const t of turns) if (!ep.done) ep.step(t);
  return classifyEpisode(ep.stats(), question);
}

const SEARCH = 'search_emails(keywords="apollo design review")';

describe("classifyEpisode", () => {
  it("leaves a correct episode unclassified", () => {
    assert.equal(classify([SEARCH, "read_email(id=e1)", 'answer("May 3, 2024", sources="e1")']), null);
  });

  it("names the furthest step a wrong episode reached", () => {
    assert.equal(classify(['answer("2024-04-28")']), "no_search");
    assert.equal(classify(['search_emails(keywords="lunch")', 'answer("2024-04-28")']), "bad_search");
    assert.equal(classify([SEARCH, "read_email(id=e2)", 'answer("April 28, 2024")']), "wrong_email");
    assert.equal(classify([SEARCH, "read_email(id=e1)", 'answer("April 28, 2024")']), "wrong_field");
    // A well-formed value found nowhere is a wrong field too: a half-copied date.
    assert.equal(classify([SEARCH, "read_email(id=e1)", 'answer("May 4, 2024")']), "wrong_field");
    assert.equal(classify([SEARCH, "read_email(id=e1)", 'answer("I don\'t know")']), "no_answer");
  });

  it("calls a malformed ending or an answer of the wrong kind formatting, however far the episode got", () => {
    assert.equal(classify([SEARCH, "read_email(id=e1)", 'answer("May 2024-05")']), "formatting");
    assert.equal(classify([SEARCH, "read_email(id=e1)", "???", "!!!", "..."]), "formatting");
    assert.equal(classify(['answer("Room 4B")']), "formatting");
  });

  it("counts every class, correct episodes aside", () => {
    const counts = countErrors(["wrong_field", null, "wrong_field", "formatting"]);
    assert.deepEqual(Object.keys(counts), [...ERROR_CLASSES]);
    assert.equal(counts.wrong_field, 2);
    assert.equal(counts.formatting, 1);
    assert.equal(counts.no_search, 0);
  });
});

describe("wellFormedAnswer and answerInInbox", () => {
  it("reads names and rooms from the generator's lists, dates and amounts by their parsers", () => {
    assert.ok(wellFormedAnswer("Dana Whitfield", { kind: "owner" }));
    assert.ok(wellFormedAnswer("dana whitfield", { kind: "owner" }));
    assert.ok(!wellFormedAnswer("Dana", { kind: "owner" }));
    assert.ok(!wellFormedAnswer("Dana Dana Whitfield", { kind: "owner" }));
    assert.ok(wellFormedAnswer("Room 4B", { kind: "room" }));
    assert.ok(!wellFormedAnswer("Room Room", { kind: "room" }));
    assert.ok(wellFormedAnswer("$1,200", { kind: "approval" }));
    assert.ok(!wellFormedAnswer("1,200 or so", { kind: "approval" }));
    assert.ok(wellFormedAnswer("3 May 2024", { kind: "deadline" }));
  });

  it("tells a value copied from some email from an invented one", () => {
    assert.ok(answerInInbox("April 28, 2024", inbox));
    assert.ok(answerInInbox("$1,200", inbox));
    assert.ok(!answerInInbox("2024-05-04", inbox));
  });
});
