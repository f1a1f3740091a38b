import type { z } from "zod";
import { type Scaffold, ScaffoldSchema } from "./scaffold.ts";

export type ParseResult = { ok: true; scaffold: Scaffold } | { ok: false; error: string };

class LiteralError extends Error {}

/**
 * One recursive-descent reader for the object notations models produce: JSON, JSON with
 * comments and trailing commas, and Python dict reprs (single quotes, None/True/False, tuples).
 */
class LiteralReader {
  private pos = 0;
  constructor(private readonly src: string) {}

  read(): unknown {
    const value = this.value();
    this.skip();
    if (this.pos < this.src.length) this.fail("unexpected text after the value");
    return value;
  }

  private fail(msg: string): never {
    throw new LiteralError(`${msg} at offset ${this.pos}`);
  }

  private skip(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const ch = s[this.pos]!;
      if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") this.pos++;
      else if (ch === "#" || (ch === "/" && s[this.pos + 1] === "/")) {
        while (this.pos < s.length && s[this.pos] !== "\n") this.pos++;
      } else if (ch === "/" && s[this.pos + 1] === "*") {
        const end = s.indexOf("*/", this.pos + 2);
        this.pos = end < 0 ? s.length : end + 2;
      } else break;
    }
  }

  private value(): unknown {
    this.skip();
    const ch = this.src[this.pos];
    if (ch === undefined) this.fail("unexpected end of input");
    if (ch === "{") return this.object();
    if (ch === "[") return this.sequence("]");
    if (ch === "(") return this.sequence(")");
    if (ch === '"' || ch === "'") return this.string();
    if (/[-+\d.]/.test(ch)) return this.number();
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos))?.[0];
    if (word) {
      this.pos += word.length;
      switch (word) {
        case "None":
        case "null":
          return null;
        case "True":
        case "true":
          return true;
        case "False":
        case "false":
          return false;
        case "NaN":
        case "nan":
          return Number.NaN;
        case "Infinity":
        case "inf":
          return Number.POSITIVE_INFINITY;
        default:
          this.pos -= word.length;
          this.fail(`unknown word "${word}"`);
      }
    }
    this.fail(`unexpected character ${JSON.stringify(ch)}`);
  }

  private object(): Record<string, unknown> {
    this.pos++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.skip();
      if (this.src[this.pos] === "}") {
        this.pos++;
        return out;
      }
      const key = this.key();
      this.skip();
      if (this.src[this.pos] !== ":") this.fail('expected ":"');
      this.pos++;
      out[key] = this.value();
      this.skip();
      const sep = this.src[this.pos];
      if (sep === ",") this.pos++;
      else if (sep !== "}") this.fail('expected "," or "}"');
    }
  }

  private key(): string {
    const ch = this.src[this.pos];
    if (ch === '"' || ch === "'") return this.string();
    const m = /^[A-Za-z_$][\w$]*|^-?\d+(?:\.\d+)?/.exec(this.src.slice(this.pos));
    if (!m) this.fail("expected a key");
    this.pos += m[0].length;
    return m[0];
  }

  private sequence(close: string): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    for (;;) {
      this.skip();
      if (this.src[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skip();
      const sep = this.src[this.pos];
      if (sep === ",") this.pos++;
      else if (sep !== close) this.fail(`expected "," or "${close}"`);
    }
  }

  private string(): string {
    const s = this.src;
    const quote = s[this.pos]!;
    const triple = s.startsWith(quote.repeat(3), this.pos);
    this.pos += triple ? 3 : 1;
    let out = "";
    for (;;) {
      if (this.pos >= s.length) this.fail("unterminated string");
      const ch = s[this.pos]!;
      if (triple ? s.startsWith(quote.repeat(3), this.pos) : ch === quote) {
        this.pos += triple ? 3 : 1;
        break;
      }
      if (ch === "\\") {
        out += this.escape();
        continue;
      }
      out += ch;
      this.pos++;
    }
    // Python joins adjacent literals: 'a' 'b' is 'ab'.
    const save = this.pos;
    this.skip();
    const next = s[this.pos];
    if (next === '"' || next === "'") return out + this.string();
    this.pos = save;
    return out;
  }

  private escape(): string {
    const s = this.src;
    const e = s[this.pos + 1];
    this.pos += 2;
    switch (e) {
      case "n":
        return "\n";
      case "t":
        return "\t";
      case "r":
        return "\r";
      case "0":
        return "\0";
      case "x": {
        const hex = s.slice(this.pos, this.pos + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return "\\x";
        this.pos += 2;
        return String.fromCharCode(Number.parseInt(hex, 16));
      }
      case "u": {
        const hex = s.slice(this.pos, this.pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) return "\\u";
        this.pos += 4;
        return String.fromCharCode(Number.parseInt(hex, 16));
      }
      case "U": {
        const hex = s.slice(this.pos, this.pos + 8);
        if (!/^[0-9a-fA-F]{8}$/.test(hex)) return "\\U";
        this.pos += 8;
        return String.fromCodePoint(Number.parseInt(hex, 16));
      }
      case "\n":
        return "";
      case undefined:
        return this.fail("unterminated escape");
      case "\\":
      case "'":
      case '"':
      case "/":
        return e;
      default:
        // \b and \f are left alone on purpose: Python's repr never writes them (it uses \x08 and
        // \x0c), so in model-written dicts they are LaTeX (\frac, \binom), not control characters.
        // Python keeps unknown escapes verbatim ("\s" stays backslash + s), which matters for LaTeX.
        return `\\${e}`;
    }
  }

  private number(): number {
    const m = /^[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf(?:inity)?|Infinity)/.exec(
      this.src.slice(this.pos),
    );
    if (!m) this.fail("bad number");
    this.pos += m[0].length;
    const text = m[0].replace(/_/g, "");
    if (/inf/i.test(text)) return text.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    return Number(text);
  }
}

/** Parse JSON, JSON5-ish or Python literal text into a plain value. */
export function parseLooseLiteral(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch {
    return new LiteralReader(trimmed).read();
  }
}

/** Every balanced `{...}` at the outermost level, skipping braces inside quoted strings. */
function balancedObjects(text: string): string[] {
  const found: string[] = [];
  let depth = 0;
  let start = -1;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote || (ch === "\n" && depth === 0)) quote = null;
      continue;
    }
    // Outside an object, apostrophes are prose ("don't"), not string delimiters.
    if ((ch === '"' || ch === "'") && depth > 0) quote = ch;
    else if (ch === "{") {
      if (depth === 0) start = i;
      depth++;
    } else if (ch === "}" && depth > 0) {
      depth--;
      if (depth === 0) found.push(text.slice(start, i + 1));
    }
  }
  return found;
}

/** Candidate texts in the order they are tried: whole text, fenced blocks (last first), objects. */
function candidates(text: string): string[] {
  const out: string[] = [text];
  const fences = [...text.matchAll(/```[A-Za-z0-9_-]*[ \t]*\r?\n?([\s\S]*?)```/g)].map((m) => m[1]!);
  out.push(...fences.reverse());
  for (const fence of fences) out.push(...balancedObjects(fence));
  const objects = balancedObjects(text);
  if (objects.length > 0) {
    const biggest = objects.reduce((a, b) => (b.length > a.length ? b : a));
    out.push(objects[objects.length - 1]!, biggest, ...objects.reverse());
  }
  return [...new Set(out.map((c) => c.trim()).filter((c) => c.length > 0))];
}

function describeIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return "invalid scaffold";
  const path = issue.path.map(String).join(".");
  return `${path || "scaffold"}: ${issue.message}`;
}

function validate(value: unknown): ParseResult {
  const parsed = ScaffoldSchema.safeParse(value);
  if (parsed.success) return { ok: true, scaffold: parsed.data };
  return { ok: false, error: describeIssue(parsed.error) };
}

/**
 * Read a scaffold from a model reply or a stored value. Never throws: any failure comes back as
 * `{ok: false, error}` so that the caller records it against the rollout.
 */
export function parseScaffold(text: string | null | undefined | object): ParseResult {
  try {
    if (text === null || text === undefined) return { ok: false, error: "no scaffold" };
    if (typeof text === "object") return validate(text);
    if (typeof text !== "string") return { ok: false, error: `unsupported scaffold type ${typeof text}` };
    if (text.trim() === "") return { ok: false, error: "empty scaffold text" };
    let syntaxError: string | null = null;
    let schemaError: string | null = null;
    for (const candidate of candidates(text)) {
      let value: unknown;
      try {
        value = parseLooseLiteral(candidate);
      } catch (err) {
        syntaxError ??= `not a JSON or Python object: ${(err as Error).message}`;
        continue;
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        syntaxError ??= "the text does not hold an object";
        continue;
      }
      const result = validate(value);
      if (result.ok) return result;
      schemaError ??= result.error;
    }
    return { ok: false, error: schemaError ?? syntaxError ?? "no object found in the text" };
  } catch (err) {
    return { ok: false, error: `scaffold parsing failed: ${(err as Error).message}` };
  }
}
