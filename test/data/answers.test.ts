import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { answersEquivalent, answerToNumber, extractAnswer, normalizeAnswer } from "../../src/data/answers.ts";

describe("answersEquivalent", () => {
  const equal: [string | number, string | number][] = [
    ["\\frac{1}{2}", "0.5"],
    ["\\frac{1}{2}", "1/2"],
    ["0.5", "1/2"],
    ["\\dfrac{3}{4}", "0.75"],
    ["$\\tfrac{1}{3}$", "1/3"],
    ["\\boxed{033}", "33"],
    ["\\boxed{033}", 33],
    ["007", "7"],
    ["5 m/s", "5"],
    ["9.8 m/s^2", "9.8"],
    ["\\text{5 cm}", 5],
    ["1,000", "1000"],
    ["6,000,000", "6e6"],
    ["3 \\times 10^{8}", "3e8"],
    ["-3", "-3.0"],
    ["-\\frac{7}{2}", "-3.5"],
    ["2\\sqrt{3}", "\\sqrt{12}"],
    ["2\\sqrt{3}", "3.46410161514"],
    ["\\[ \\boxed{79.99999999999999} \\]", "80"],
    ["x = 5", "5"],
    ["45^\\circ", "45"],
    ["\\left(\\frac{1}{2}\\right)", "0.5"],
    ["Yes", "yes"],
  ];
  for (const [a, b] of equal) {
    test(`${JSON.stringify(a)} = ${JSON.stringify(b)}`, () => {
      assert.equal(answersEquivalent(a, b), true);
      assert.equal(answersEquivalent(b, a), true, "equivalence is symmetric");
    });
  }

  const different: [string | number | null, string | number | null][] = [
    ["12", "21"],
    ["33", "34"],
    ["1/2", "0.51"],
    ["1,2", "12"],
    ["-5", "5"],
    ["80", "79.9"],
    ["5", "five"],
    ["yes", "no"],
    [null, "3"],
    [null, null],
    ["", ""],
  ];
  for (const [a, b] of different) {
    test(`${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`, () => {
      assert.equal(answersEquivalent(a, b), false);
    });
  }

  test("relTol widens or narrows the numeric comparison", () => {
    assert.equal(answersEquivalent("100", "100.5"), false);
    assert.equal(answersEquivalent("100", "100.5", { relTol: 0.01 }), true);
    assert.equal(answersEquivalent("0.1", "0.1000001", { relTol: 1e-9 }), false);
  });

  test("integers compare exactly, however large", () => {
    assert.equal(answersEquivalent("1000000000", "1000000001"), false);
  });
});

describe("answerToNumber / normalizeAnswer", () => {
  test("parses the common forms", () => {
    assert.equal(answerToNumber("\\frac{3}{8}"), 0.375);
    assert.equal(answerToNumber("1.5e3"), 1500);
    assert.equal(answerToNumber("$-12$"), -12);
    assert.equal(answerToNumber("m/s"), null);
    assert.equal(answerToNumber("hello"), null);
    assert.equal(answerToNumber("66 km per hour"), 66);
    assert.equal(answerToNumber("2 apples and then 3 more oranges"), null);
    assert.equal(answerToNumber("50 %"), 50);
    assert.equal(answerToNumber("12.5\\%"), 12.5);
  });

  test("canonical strings", () => {
    assert.equal(normalizeAnswer("\\boxed{033}"), "33");
    assert.equal(normalizeAnswer(0.5), "0.5");
    assert.equal(normalizeAnswer("\\frac{1}{2}"), "0.5");
    assert.equal(normalizeAnswer(" \\text{Yes}. "), "yes");
  });
});

describe("extractAnswer", () => {
  test("the last \\boxed wins, with nested braces kept whole", () => {
    assert.equal(extractAnswer("first \\boxed{3}, finally \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  });

  test("\\boxed beats 'the answer is' and later numbers", () => {
    assert.equal(extractAnswer("\\boxed{7}. The answer is 8. Check: 9"), "7");
  });

  test("'the answer is' beats the last number", () => {
    assert.equal(extractAnswer("So the answer is $42$. We used 3 steps."), "42");
    assert.equal(extractAnswer("The final answer is: 17"), "17");
  });

  test("falls back to the last number", () => {
    assert.equal(extractAnswer("We get 3 apples, then 1,250 pears and -4.5 more."), "-4.5");
    assert.equal(extractAnswer("totals 1,250"), "1,250");
  });

  test("nothing to extract", () => {
    assert.equal(extractAnswer("no digits here"), null);
    assert.equal(extractAnswer(""), null);
  });

  test("a reply of only markup is no answer; bold answers lose their stars", () => {
    assert.equal(extractAnswer("**"), null);
    assert.equal(extractAnswer("The answer is **"), null);
    assert.equal(extractAnswer("\\boxed{**}"), null);
    assert.equal(extractAnswer("The answer is **104**."), "104");
    assert.equal(answerToNumber("**104**"), 104);
    assert.equal(answerToNumber("**"), null);
    assert.equal(answerToNumber("`7`"), 7);
    assert.ok(answersEquivalent("**33**", "33"));
  });

  test("a chain of = means its last value", () => {
    assert.equal(answerToNumber("\\( m + n + p = 1 + 7 + 96 = 104 \\)"), 104);
    assert.equal(answerToNumber("1 + 7 + 96 = 104"), 104);
    assert.equal(answerToNumber("x = 5"), 5);
    assert.ok(answersEquivalent("\\( m + n + p = 1 + 7 + 96 = 104 \\)", "104"));
    assert.equal(answerToNumber("a = 1, b = 2"), null, "a list of equations is not one value");
    assert.equal(answerToNumber("x >= 3"), null);
  });

  test("unbalanced \\boxed falls through to the other rules", () => {
    assert.equal(extractAnswer("\\boxed{12 and then 13"), "13");
  });
});
