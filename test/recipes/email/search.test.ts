import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  findEmail,
  formatEmail,
  formatSearchResults,
  searchEmails,
  stem,
} from "../../../src/recipes/email/search.ts";
import { inbox } from "./fixtures.ts";

const ids = (args: Parameters<typeof searchEmails>[1]) => searchEmails(inbox, args).map((h) => h.id);

describe("searchEmails", () => {
  it("ranks by distinct keywords, then hits, then recency", () => {
    // e1: apollo×2, design×2, review×2 → 3 distinct, 6 hits. e2: apollo, review → 2/2.
    // e4: "reviews"×2 stems to review → 1 distinct, 2 hits. e3: apollo → 1/1.
    const hits = searchEmails(inbox, { keywords: ["apollo design review"] });
    assert.deepEqual(
      hits.map((h) => [h.id, h.matchedKeywords, h.hits]),
      [
        ["e1", 3, 6],
        ["e2", 2, 2],
        ["e4", 1, 2],
        ["e3", 1, 1],
      ],
    );
  });

  it("breaks ties by newer date first", () => {
    // e1..e3 each mention apollo; e1 twice (subject + body), e2 and e3 once.
    assert.deepEqual(ids({ keywords: ["apollo"] }), ["e1", "e3", "e2"]);
  });

  it("applies from, to, date filters and max_results", () => {
    assert.deepEqual(ids({ keywords: ["apollo"], from: "dana" }), ["e1", "e3"]);
    assert.deepEqual(ids({ keywords: ["apollo"], to: "mina.okafor" }), ["e3"]);
    // sent_after is inclusive of the day, sent_before exclusive.
    assert.deepEqual(ids({ keywords: ["apollo"], sent_after: "2024-04-02" }), ["e3", "e2"]);
    assert.deepEqual(ids({ keywords: ["apollo"], sent_before: "2024-04-02" }), ["e1"]);
    assert.deepEqual(ids({ keywords: ["apollo"], sent_after: "April 2, 2024", sent_before: "2024-04-03" }), [
      "e2",
    ]);
    assert.deepEqual(ids({ keywords: ["apollo"], max_results: 1 }), ["e1"]);
    assert.deepEqual(ids({ keywords: ["apollo"], max_results: 50 }).length, 3);
    assert.deepEqual(ids({ keywords: ["zeppelin"] }), []);
    assert.throws(() => ids({ keywords: ["apollo"], sent_after: "soon" }), /sent_after must be a date/);
  });

  it("formats results and emails", () => {
    const text = formatSearchResults(searchEmails(inbox, { keywords: ["offsite"] }));
    assert.equal(
      text,
      "e3 | 2024-04-03 | Q3 offsite approved | I approved $1,200 for the Apollo Q3 offsite.",
    );
    assert.equal(formatSearchResults([]), "No emails found.");
    assert.equal(
      formatEmail(findEmail(inbox, "E5")!),
      "ID: e5\nFrom: Ari Chen <ari.chen@acme.example>\nTo: Mina Okafor <mina.okafor@acme.example>\n" +
        "Date: 2024-04-05T08:00:00Z\nSubject: Lunch\n\nNoodles on Thursday?",
    );
    assert.equal(findEmail(inbox, "e9"), undefined);
  });

  it("stems common suffixes only when enough of the word remains", () => {
    assert.equal(stem("reviews"), "review");
    assert.equal(stem("approved"), stem("approve"));
    assert.equal(stem("leading"), "lead");
    assert.equal(stem("use"), "use");
  });
});
