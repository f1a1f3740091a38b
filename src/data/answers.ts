import { safeEvaluate } from "./safe-math.ts";

/** Content of the `\name{...}` group starting at `open` (index of "{"), braces balanced. */
function balancedGroup(text: string, open: number): { content: string; end: number } | null {
  if (text[open] !== "{") return null;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{") depth++;
    else if (ch === "}") {
      depth--;
      if (depth === 0) return { content: text.slice(open + 1, i), end: i + 1 };
    }
  }
  return null;
}

function lastBoxed(text: string): string | null {
  const re = /\\(?:boxed|fbox)\s*\{/g;
  let found: string | null = null;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const group = balancedGroup(text, m.index + m[0].length - 1);
    if (group) found = group.content;
  }
  return found;
}

const NUMBER_RE = /-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+/g;

/** Markdown emphasis and code marks around an answer ("**104**", "`7`"), which say nothing. */
const MARKUP_EDGES = /^(?:\*\*|__|\*|`)+|(?:\*\*|__|\*|`)+$/g;

function withoutMarkup(text: string): string {
  return text.trim().replace(MARKUP_EDGES, "").trim();
}

/** Whether a candidate answer says anything: a reply of only markup (`**`) is no answer. */
function hasContent(text: string): boolean {
  return /[\p{L}\p{N}]/u.test(withoutMarkup(text));
}

/** The answer following "the answer is": a $...$ span, or the text up to the end of the sentence. */
function answerAfterPhrase(rest: string): string {
  const text = rest.trim();
  const delimited = /^\$+([^$]+)\$+|^\\\((.+?)\\\)/.exec(text);
  if (delimited) return (delimited[1] ?? delimited[2] ?? "").trim();
  const end = text.search(/[.;!?](?:\s|$)/);
  return (end >= 0 ? text.slice(0, end) : text).replace(/[,:]+$/, "").trim();
}

/**
 * The answer a reply commits to, by the usual math-benchmark convention: the last `\boxed{}`
 * (balanced braces, so `\boxed{\frac{1}{2}}` is whole), else the last "the answer is X", else
 * the last number in the text.
 */
export function extractAnswer(reply: string): string | null {
  if (typeof reply !== "string" || reply.length === 0) return null;
  const boxed = lastBoxed(reply);
  if (boxed !== null && hasContent(boxed)) return boxed.trim();
  const answerIs = [...reply.matchAll(/answer is\s*:?\s*([^\n]+)/gi)];
  if (answerIs.length > 0) {
    const cleaned = withoutMarkup(answerAfterPhrase(withoutMarkup(answerIs[answerIs.length - 1]![1]!)));
    if (hasContent(cleaned)) return cleaned;
  }
  const numbers = reply.match(NUMBER_RE);
  return numbers && numbers.length > 0 ? numbers[numbers.length - 1]! : null;
}

/** Replace every `\cmd{a}{b}` (two balanced groups) using `render(a, b)`. */
function replaceTwoArg(text: string, cmd: RegExp, render: (a: string, b: string) => string): string {
  for (let guard = 0; guard < 100; guard++) {
    const m = cmd.exec(text);
    if (!m) return text;
    const first = balancedGroup(text, m.index + m[0].length);
    if (!first) return text;
    let secondStart = first.end;
    while (text[secondStart] === " ") secondStart++;
    const second = balancedGroup(text, secondStart);
    if (!second) return text;
    text = text.slice(0, m.index) + render(first.content, second.content) + text.slice(second.end);
  }
  return text;
}

/** Strip presentation (math delimiters, \boxed, \text, spacing commands) but keep the meaning. */
function stripLatex(input: string): string {
  let s = withoutMarkup(input);
  const boxed = lastBoxed(s);
  if (boxed !== null) s = boxed;
  s = s
    .replace(/^\\\[|\\\]$/g, "")
    .replace(/^\\\(|\\\)$/g, "")
    .replace(/^\$+|\$+$/g, "")
    .trim();
  s = s.replace(/\\(?:text|textbf|mathrm|mathbf|operatorname|mbox)\s*\{([^{}]*)\}/g, " $1 ");
  s = s.replace(/\\(?:left|right|displaystyle)\b/g, "");
  s = s.replace(/\\[,;:!]|\\ |~/g, " ");
  s = s.replace(/\\[dt]frac/g, "\\frac");
  s = s.replace(/\^\\circ|°/g, " deg");
  return s.replace(/\s+/g, " ").trim();
}

/** Turn the remaining LaTeX math into mathjs syntax. */
function latexToExpression(s: string): string {
  s = replaceTwoArg(s, /\\frac\s*/, (a, b) => `((${a})/(${b}))`);
  s = replaceTwoArg(s, /\\binom\s*/, (a, b) => `combinations(${a},${b})`);
  for (let guard = 0; guard < 100; guard++) {
    const m = /\\sqrt\s*(?:\[([^\]]*)\])?\s*\{/.exec(s);
    if (!m) break;
    const group = balancedGroup(s, m.index + m[0].length - 1);
    if (!group) break;
    const inner = m[1] ? `nthRoot(${group.content},${m[1]})` : `sqrt(${group.content})`;
    s = s.slice(0, m.index) + inner + s.slice(group.end);
  }
  s = s
    .replace(/\\sqrt\s*(\d+)/g, "sqrt($1)")
    .replace(/\\(?:cdot|times)/g, "*")
    .replace(/\\div/g, "/")
    .replace(/\\pi\b/g, "pi")
    .replace(/π/g, "pi")
    .replace(/\*\*/g, "^")
    .replace(/[{]/g, "(")
    .replace(/[}]/g, ")");
  return s;
}

const UNIT_TAIL = /^[\s]*[a-zA-Zµμ°%Ω][a-zA-Zµμ°%Ω/^\d\s·*.\-()]*$/;

/**
 * The numeric value of an answer, or null when it is not a number. Handles LaTeX fractions and
 * roots, thousands separators, "x = 5", scientific notation, and trailing units ("5 m/s").
 */
export function answerToNumber(a: string | number): number | null {
  if (typeof a === "number") return Number.isFinite(a) ? a : null;
  if (typeof a !== "string") return null;
  let s = stripLatex(a);
  if (s === "" || s.length > 200) return null;
  // "x = 5", "AB = 12" or a chain "m + n + p = 1 + 7 + 96 = 104": the value is what follows the
  // last "=" (a comma means a list of equations, which is not one value).
  const eq = s.split(/(?<![<>!=])=(?!=)/);
  if (eq.length >= 2 && !s.includes(",")) s = eq[eq.length - 1]!.trim();
  // A trailing percent sign is read as a unit ("50%" = 50), as answer keys usually write it.
  s = s
    .replace(/\.$/, "")
    .replace(/\s*\\?%$/, "")
    .trim();
  // Thousands separators only in the grouped form, so "1,2" (a list) is not read as 12.
  s = s.replace(/(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])/g, (m) => m.replace(/,/g, ""));
  const expr = latexToExpression(s);
  const direct = evaluateNumber(expr);
  if (direct !== null) return direct;
  // Try the longest numeric prefix followed by something that reads as a unit.
  for (let cut = expr.length - 1; cut > 0; cut--) {
    const tail = expr.slice(cut);
    if (!/^\s/.test(tail) && !/\d$/.test(expr.slice(0, cut))) continue;
    // At most three words of unit ("km per hour"); longer tails are prose, not units.
    if (!UNIT_TAIL.test(tail) || tail.trim().split(/\s+/).length > 3) continue;
    const head = evaluateNumber(expr.slice(0, cut).trim());
    if (head !== null) return head;
  }
  return null;
}

function evaluateNumber(expr: string): number | null {
  if (expr === "" || !/[\d]|pi/.test(expr)) return null;
  if (/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(expr)) return Number(expr);
  return safeEvaluate(expr).value;
}

/** Integers print exactly; other numbers with 12 significant digits so float noise compares equal. */
function canonicalNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(12)));
}

/**
 * A canonical string for an answer: the number when it has a numeric value ("033" → "33",
 * "\frac{1}{2}" → "0.5"), otherwise the text without LaTeX decoration, spaces or case.
 */
export function normalizeAnswer(a: string | number): string {
  const n = answerToNumber(a);
  if (n !== null) return canonicalNumber(n);
  return stripLatex(String(a))
    .replace(/\\[dt]?frac/g, "\\frac")
    .replace(/\s+/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
}

/**
 * Deterministic answer equivalence: numeric comparison when both sides have a numeric value
 * (integers exactly, others within a relative tolerance), else the normalised text.
 */
export function answersEquivalent(
  a: string | number | null,
  b: string | number | null,
  opts: { relTol?: number } = {},
): boolean {
  if (a === null || b === null || a === undefined || b === undefined) return false;
  const relTol = opts.relTol ?? 1e-6;
  const x = answerToNumber(a);
  const y = answerToNumber(b);
  if (x !== null && y !== null) {
    if (Number.isInteger(x) && Number.isInteger(y)) return x === y;
    return Math.abs(x - y) <= relTol * Math.max(1, Math.abs(x), Math.abs(y));
  }
  if (x !== null || y !== null) return false;
  const na = normalizeAnswer(a);
  return na !== "" && na === normalizeAnswer(b);
}
