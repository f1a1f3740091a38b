import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatToolCall,
  type ParseResult,
  parseToolCall,
  type ToolCall,
} from "../../../src/recipes/email/tool-call.ts";

function ok(text: string): ToolCall {
  const r = parseToolCall(text);
  assert.ok(r.ok, `expected ${JSON.stringify(text)} to parse, got ${JSON.stringify(r)}`);
  return r.call;
}

function err(text: string): Extract<ParseResult, { ok: false }> {
  const r = parseToolCall(text);
  assert.ok(!r.ok, `expected ${JSON.stringify(text)} to fail, got ${JSON.stringify(r)}`);
  return r;
}

describe("parseToolCall, compact form", () => {
  it("parses searches with a positional or named keyword phrase and filters", () => {
    assert.deepEqual(ok('search_emails(keywords="apollo review")'), {
      tool: "search_emails",
      args: { keywords: ["apollo", "review"] },
    });
    assert.deepEqual(ok("search(apollo design review)"), {
      tool: "search_emails",
      args: { keywords: ["apollo", "design", "review"] },
    });
    assert.deepEqual(
      ok(
        "search_emails(keywords=['q3', \"offsite\"], from='dana', sent_after=May 1 2024, max_results=\"5\")",
      ),
      {
        tool: "search_emails",
        args: { keywords: ["q3", "offsite"], from: "dana", sent_after: "2024-05-01", max_results: 5 },
      },
    );
  });

  it("parses reads and answers, ignoring text around the call", () => {
    assert.deepEqual(ok("read_email(id=e17)"), { tool: "read_email", args: { id: "e17" } });
    assert.deepEqual(ok("I should open it.\nread(17)"), { tool: "read_email", args: { id: "e17" } });
    assert.deepEqual(ok('```\nanswer("2024-05-03")\n```'), {
      tool: "return_final_answer",
      args: { answer: "2024-05-03", sources: [] },
    });
    assert.deepEqual(ok('return_final_answer(answer="$1,200", sources=[e3, e9])'), {
      tool: "return_final_answer",
      args: { answer: "$1,200", sources: ["e3", "e9"] },
    });
    assert.deepEqual(ok('answer("He said \\"no\\" (twice)", sources="e1,e2")'), {
      tool: "return_final_answer",
      args: { answer: 'He said "no" (twice)', sources: ["e1", "e2"] },
    });
    assert.deepEqual(ok("The answer (I think) is in e3.\nread_email(id=e3)"), {
      tool: "read_email",
      args: { id: "e3" },
    });
    assert.deepEqual(ok("Let me think(hard) first, then search_emails(keywords=apollo)"), {
      tool: "search_emails",
      args: { keywords: ["apollo"] },
    });
    assert.deepEqual(ok('I will call it: {"tool": "read", "args": {"id": 3}}'), {
      tool: "read_email",
      args: { id: "e3" },
    });
    assert.deepEqual(ok("answer(Note: none)"), {
      tool: "return_final_answer",
      args: { answer: "Note: none", sources: [] },
    });
  });

  it("reports unparseable text", () => {
    assert.equal(err("").kind, "unparseable");
    assert.equal(err("I think the answer is May 3").kind, "unparseable");
    assert.equal(err('read_email(id="e17"').kind, "unparseable");
    assert.equal(err('answer("unterminated)').kind, "unparseable");
    assert.equal(err("search_emails(keywords=)").kind, "unparseable");
    assert.equal(err('search_emails("a" "b")').kind, "unparseable");
    assert.equal(err("It is on May 3 (a Friday).").kind, "unparseable");
  });

  it("reports unknown tools", () => {
    const e = err('send_email(to="dana")');
    assert.equal(e.kind, "unknown_tool");
    assert.match(e.message, /unknown tool "send_email"/);
    assert.equal(err("I will now\n  forward (e3)").kind, "unknown_tool");
  });

  it("reports bad arguments, naming the field", () => {
    const cases: [string, RegExp][] = [
      ["search_emails(from=dana)", /keywords/],
      ['search_emails(keywords="")', /keywords must name at least one keyword/],
      ['search_emails(keywords="a", max_results=11)', /max_results must be at most 10/],
      ['search_emails(keywords="a", max_results=0)', /max_results/],
      ['search_emails(keywords="a", sent_before="next week")', /sent_before must be a date/],
      ['search_emails(keywords="a", subject="b")', /unknown argument "subject"/],
      ["read_email(id=seventeen)", /id must be an email id/],
      ["read_email()", /id/],
      ["read_email(e1, e2)", /at most one positional/],
      ['answer("")', /answer must not be empty/],
      ['answer("x", answer="y")', /answer given twice/],
    ];
    for (const [text, message] of cases) {
      const e = err(text);
      assert.equal(e.kind, "bad_arguments", text);
      assert.match(e.message, message, text);
    }
  });
});

describe("parseToolCall error messages", () => {
  it("name the tools as the prompt shows them, never the parser's internal names", () => {
    const texts = [
      'send_email(to="dana")',
      'answer("")',
      'answer("x", answer="y")',
      'return_final_answer(answer="x", confidence=1)',
      'answer("a", "b")',
      'answer("unterminated)',
      '{"tool": "final_answer", "args": "not json"}',
      '{"tool": "answer", "args": [1]}',
      "hmm",
    ];
    for (const text of texts) {
      const e = err(text);
      assert.doesNotMatch(e.message, /return_final_answer|final_answer|bad_arguments|unknown_tool/, text);
    }
    assert.match(err('answer("")').message, /^answer: answer must not be empty/);
    assert.match(err("send_email(x)").message, /use one of search_emails, read_email, answer$/);
  });
});

describe("parseToolCall, JSON form", () => {
  it("parses tool/args and name/arguments objects, with arguments as a JSON string", () => {
    assert.deepEqual(ok('{"tool": "read_email", "args": {"id": "e4"}}'), {
      tool: "read_email",
      args: { id: "e4" },
    });
    assert.deepEqual(ok('{"name": "search", "arguments": "{\\"keywords\\": [\\"apollo\\"]}"}'), {
      tool: "search_emails",
      args: { keywords: ["apollo"] },
    });
    assert.deepEqual(ok('{"tool": "answer", "args": {"answer": 1200, "sources": ["e3"]}}'), {
      tool: "return_final_answer",
      args: { answer: "1200", sources: ["e3"] },
    });
  });

  it("reports each error kind", () => {
    assert.equal(err('{"tool": "read_email", "args": {"id": "e4"}').kind, "unparseable");
    assert.equal(err('{"args": {"id": "e4"}}').kind, "unparseable");
    assert.equal(err('{"tool": "delete_email", "args": {}}').kind, "unknown_tool");
    assert.equal(err('{"tool": "read_email", "args": {"id": "x"}}').kind, "bad_arguments");
    assert.equal(err('{"tool": "read_email", "args": [1]}').kind, "bad_arguments");
  });
});

describe("formatToolCall", () => {
  it("writes the compact form and round-trips", () => {
    const calls: ToolCall[] = [
      { tool: "search_emails", args: { keywords: ["apollo", "review"] } },
      {
        tool: "search_emails",
        args: {
          keywords: ["q3"],
          from: "dana",
          to: "ari",
          sent_after: "2024-01-01",
          sent_before: "2024-02-01",
          max_results: 3,
        },
      },
      { tool: "read_email", args: { id: "e12" } },
      { tool: "return_final_answer", args: { answer: 'a "quoted" answer', sources: ["e1", "e2"] } },
      { tool: "return_final_answer", args: { answer: "I don't know", sources: [] } },
    ];
    assert.equal(formatToolCall(calls[0]!), 'search_emails(keywords="apollo review")');
    assert.equal(formatToolCall(calls[2]!), "read_email(id=e12)");
    assert.equal(formatToolCall(calls[3]!), 'answer("a \\"quoted\\" answer", sources="e1 e2")');
    for (const c of calls) assert.deepEqual(ok(formatToolCall(c)), c);
  });
});
