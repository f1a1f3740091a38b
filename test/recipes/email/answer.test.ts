import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  answerAppearsIn,
  answersMatch,
  isIDontKnow,
  normaliseText,
  parseAmount,
  parseDate,
} from "../../../src/recipes/email/answer.ts";

describe("parseDate", () => {
  it("reads the formats the inboxes and policies use", () => {
    for (const s of [
      "2024-05-03",
      "2024-5-3",
      "2024/05/03",
      "2024-05-03T10:00:00Z",
      "05/03/2024",
      "May 3, 2024",
      "may 3 2024",
      "May 3rd, 2024",
      "Friday, May 3, 2024",
      "3 May 2024",
      "3rd of May, 2024",
      "May 03, 2024",
    ]) {
      assert.equal(parseDate(s), "2024-05-03", s);
    }
    assert.equal(parseDate("Sept 9, 2024"), "2024-09-09");
    assert.equal(parseDate("29 February 2024"), "2024-02-29");
  });

  it("rejects impossible dates and non-dates", () => {
    for (const s of ["2023-02-29", "2024-13-01", "May 32, 2024", "Room 4B", "1200", "", "May 2024"]) {
      assert.equal(parseDate(s), null, s);
    }
  });
});

describe("parseAmount", () => {
  it("normalises currency formats", () => {
    assert.equal(parseAmount("$1,200"), 1200);
    assert.equal(parseAmount("1200"), 1200);
    assert.equal(parseAmount("USD 1,200.00"), 1200);
    assert.equal(parseAmount("$ 1200 dollars"), 1200);
    assert.equal(parseAmount("$1.2k"), 1200);
    assert.equal(parseAmount("$12,500"), 12500);
    assert.equal(parseAmount("2 million"), 2_000_000);
  });

  it("rejects malformed amounts", () => {
    for (const s of ["$1,20", "twelve hundred", "Room 4B", "$", "1,2,3"])
      assert.equal(parseAmount(s), null, s);
  });
});

describe("answersMatch", () => {
  it("compares dates as days", () => {
    assert.ok(answersMatch("2024-05-03", "May 3, 2024"));
    assert.ok(answersMatch("2024-05-03", " 3 May 2024 "));
    assert.ok(!answersMatch("2024-05-03", "2024-05-04"));
    assert.ok(!answersMatch("2024-05-03", "May 3"));
  });

  it("compares amounts as numbers", () => {
    assert.ok(answersMatch("$1,200", "1200"));
    assert.ok(answersMatch("$1,200", "$1,200.00"));
    assert.ok(!answersMatch("$1,200", "$12,000"));
  });

  it("compares other text case-, punctuation- and whitespace-insensitively", () => {
    assert.ok(answersMatch("Room 4B", "room  4b."));
    assert.ok(answersMatch("Orion Room", "the Orion room"));
    assert.ok(answersMatch("Dana Whitfield", "DANA WHITFIELD!"));
    assert.ok(!answersMatch("Dana Whitfield", "Dana"));
    assert.ok(!answersMatch("Room 4B", "Room 4C"));
    assert.ok(!answersMatch("", ""));
  });

  it("normaliseText strips punctuation and a leading article", () => {
    assert.equal(normaliseText("  The  Orion-Room! "), "orion room");
  });
});

describe("isIDontKnow", () => {
  it("accepts the usual spellings only", () => {
    for (const s of ["I don't know", "i dont know", "I do not know.", "IDK", "Unknown", "I don’t know"]) {
      assert.ok(isIDontKnow(s), s);
    }
    for (const s of ["2024-05-03", "I know", "maybe"]) assert.ok(!isIDontKnow(s), s);
  });
});

describe("answerAppearsIn", () => {
  it("finds an answer stated in another format", () => {
    assert.ok(answerAppearsIn("2024-05-03", "It is on Friday, May 3, 2024 at ten."));
    assert.ok(answerAppearsIn("2024-05-03", "see you 3 May 2024"));
    assert.ok(!answerAppearsIn("2024-05-03", "see you 4 May 2024"));
    assert.ok(answerAppearsIn("$1,200", "I approved $1,200 for it."));
    assert.ok(!answerAppearsIn("$1,200", "I approved $11,200 for it."));
    assert.ok(answerAppearsIn("Room 4B", "We booked Room 4B."));
    assert.ok(!answerAppearsIn("Room 4B", "We booked Room 4BC."));
  });
});
