/**
 * The text a policy writes to call a tool, and its parser. The compact form is one line that a
 * small model learns quickly:
 *
 *   search_emails(keywords="apollo design review", from="dana", max_results=5)
 *   read_email(id=e17)
 *   answer("2024-05-03", sources="e3 e9")
 *
 * The first argument may be positional; `search`, `read` and `answer` are short names. A JSON
 * form `{"tool": "read_email", "args": {"id": "e17"}}` is accepted as well. Text around the
 * call (a thought, a code fence) is ignored; the first call in the text is the one executed.
 */
import { z } from "zod";
import { parseDate } from "./answer.ts";
import { MAX_SEARCH_RESULTS, type SearchArgs } from "./search.ts";

export type ToolName = "search_emails" | "read_email" | "return_final_answer";

export type ToolCall =
  | { tool: "search_emails"; args: SearchArgs }
  | { tool: "read_email"; args: { id: string } }
  | { tool: "return_final_answer"; args: { answer: string; sources: string[] } };

export type ToolErrorKind = "unparseable" | "unknown_tool" | "bad_arguments";

export type ParseResult = { ok: true; call: ToolCall } | { ok: false; kind: ToolErrorKind; message: string };

const ALIASES: Record<string, ToolName> = {
  search_emails: "search_emails",
  search: "search_emails",
  read_email: "read_email",
  read: "read_email",
  return_final_answer: "return_final_answer",
  final_answer: "return_final_answer",
  answer: "return_final_answer",
};

/**
 * Each tool as the prompt names it (prompt.ts), which is how error messages name it: the policy
 * is told about the tools it was shown, never about the parser's internal names.
 */
export const TOOL_NAMES_SHOWN: Record<ToolName, string> = {
  search_emails: "search_emails",
  read_email: "read_email",
  return_final_answer: "answer",
};

/** The parameter a positional first argument fills. */
const PRIMARY: Record<ToolName, string> = {
  search_emails: "keywords",
  read_email: "id",
  return_final_answer: "answer",
};

const PARAMS = new Set([
  "keywords",
  "from",
  "to",
  "sent_after",
  "sent_before",
  "max_results",
  "id",
  "answer",
  "sources",
]);

type RawValue = string | number | boolean | null | RawValue[] | { [k: string]: RawValue };

class ArgSyntaxError extends Error {}

/** Parses `key=value, value, key="quoted", key=[a, b]` (the inside of the parentheses). */
function parseArgList(src: string): { named: Map<string, RawValue>; positional: RawValue[] } {
  const named = new Map<string, RawValue>();
  const positional: RawValue[] = [];
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const quoted = (): string => {
    const q = src[i]!;
    i++;
    let out = "";
    while (i < src.length && src[i] !== q) {
      if (src[i] === "\\" && i + 1 < src.length) {
        const c = src[i + 1]!;
        out += c === "n" ? "\n" : c === "t" ? "\t" : c;
        i += 2;
      } else out += src[i++];
    }
    if (i >= src.length) throw new ArgSyntaxError(`unterminated string starting with ${q}`);
    i++;
    return out;
  };
  const value = (inList: boolean): RawValue => {
    ws();
    const c = src[i];
    if (c === '"' || c === "'") return quoted();
    if (c === "[") {
      i++;
      const items: RawValue[] = [];
      ws();
      if (src[i] === "]") {
        i++;
        return items;
      }
      for (;;) {
        items.push(value(true));
        ws();
        if (src[i] === ",") i++;
        else if (src[i] === "]") {
          i++;
          return items;
        } else throw new ArgSyntaxError("expected , or ] in a list");
      }
    }
    const stop = inList ? /[,\]]/ : /,/;
    const start = i;
    while (i < src.length && !stop.test(src[i]!)) i++;
    const bare = src.slice(start, i).trim();
    if (bare === "") throw new ArgSyntaxError("empty argument");
    return /^-?\d+(?:\.\d+)?$/.test(bare) ? Number(bare) : bare;
  };
  ws();
  while (i < src.length) {
    // `key: value` is only read as named for real parameter names, so that a bare answer
    // such as `answer(Note: none)` stays positional.
    const key = /^([A-Za-z_]\w*)\s*([=:])\s*/.exec(src.slice(i));
    if (key && (key[2] === "=" || PARAMS.has(key[1]!))) {
      i += key[0].length;
      named.set(key[1]!, value(false));
    } else {
      if (named.size > 0) throw new ArgSyntaxError("a positional argument follows a named one");
      positional.push(value(false));
    }
    ws();
    if (i < src.length) {
      if (src[i] !== ",") throw new ArgSyntaxError(`unexpected "${src[i]}" after an argument`);
      i++;
      ws();
    }
  }
  return { named, positional };
}

/** Index of the parenthesis closing the one at `open`, skipping quoted text; -1 if none. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i;
  }
  return -1;
}

function fail(kind: ToolErrorKind, message: string): ParseResult {
  return { ok: false, kind, message };
}

/** A list argument given as a list or as one string separated by spaces or commas. */
const stringList = z
  .union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))])
  .transform((v) =>
    (Array.isArray(v) ? v : [v]).flatMap((s) => String(s).split(/[\s,]+/)).filter((s) => s.length > 0),
  );

const dateArg = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = String(v).trim();
  if (/^\d{4}-\d{2}-\d{2}T/.test(s) || parseDate(s) !== null) return /T/.test(s) ? s : parseDate(s)!;
  ctx.addIssue({ code: "custom", message: `must be a date such as 2024-05-03, got "${s}"` });
  return z.NEVER;
});

const searchSchema = z
  .object({
    keywords: stringList.refine((k) => k.length > 0, "must name at least one keyword"),
    from: z.string().min(1).optional(),
    to: z.string().min(1).optional(),
    sent_after: dateArg.optional(),
    sent_before: dateArg.optional(),
    max_results: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_SEARCH_RESULTS, `must be at most ${MAX_SEARCH_RESULTS}`)
      .optional(),
  })
  .strict();

const readSchema = z
  .object({
    id: z
      .union([z.string(), z.number()])
      .transform((v) => String(v).trim().toLowerCase())
      .refine((s) => /^e?\d+$/.test(s), "must be an email id such as e17")
      .transform((s) => (s.startsWith("e") ? s : `e${s}`)),
  })
  .strict();

const answerSchema = z
  .object({
    answer: z
      .union([z.string(), z.number()])
      .transform((v) => String(v).trim())
      .refine((s) => s.length > 0, "must not be empty"),
    sources: stringList.default([]),
  })
  .strict();

const SCHEMAS = { search_emails: searchSchema, read_email: readSchema, return_final_answer: answerSchema };

function validate(tool: ToolName, args: Record<string, RawValue>): ParseResult {
  const parsed = SCHEMAS[tool].safeParse(args);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join(".") : "arguments";
    const message =
      issue.code === "unrecognized_keys"
        ? `unknown argument ${issue.keys.map((k) => `"${k}"`).join(", ")} for ${TOOL_NAMES_SHOWN[tool]}`
        : `${TOOL_NAMES_SHOWN[tool]}: ${field} ${issue.message}`;
    return fail("bad_arguments", message);
  }
  return { ok: true, call: { tool, args: parsed.data } as ToolCall };
}

function resolveTool(name: string): ToolName | null {
  return ALIASES[name.trim().toLowerCase()] ?? null;
}

const KNOWN = Object.values(TOOL_NAMES_SHOWN).join(", ");

function parseJsonCall(text: string): ParseResult | null {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end <= start) return null;
  let obj: unknown;
  try {
    obj = JSON.parse(text.slice(start, end + 1));
  } catch {
    return null;
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return null;
  const rec = obj as Record<string, unknown>;
  const name = rec.tool ?? rec.name ?? rec.function;
  if (typeof name !== "string") return fail("unparseable", 'a JSON tool call needs a "tool" field');
  const tool = resolveTool(name);
  if (tool === null) return fail("unknown_tool", `unknown tool "${name}"; use one of ${KNOWN}`);
  let args = rec.args ?? rec.arguments ?? rec.parameters ?? {};
  if (typeof args === "string") {
    try {
      args = JSON.parse(args);
    } catch {
      return fail("bad_arguments", `${TOOL_NAMES_SHOWN[tool]}: args is a string that is not a JSON object`);
    }
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return fail("bad_arguments", `${TOOL_NAMES_SHOWN[tool]}: args must be an object`);
  }
  return validate(tool, args as Record<string, RawValue>);
}

/**
 * The call to execute: the first `name(` of a known tool, else the first call-shaped line (an
 * unknown tool). Prose such as "the answer (I think) is" is not a call: a name followed by a
 * space and a parenthesis only counts at the start of a line.
 */
function findCall(body: string): (RegExpExecArray & { known: boolean }) | null {
  let firstUnknown: RegExpExecArray | null = null;
  const re = /\b([A-Za-z_]\w*)(\s*)\(/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const lineStart = /(?:^|\n)[ \t]*$/.test(body.slice(0, m.index));
    if (m[2] !== "" && !lineStart) continue;
    if (resolveTool(m[1]!) !== null) return Object.assign(m, { known: true });
    if (lineStart && firstUnknown === null) firstUnknown = m;
  }
  return firstUnknown ? Object.assign(firstUnknown, { known: false }) : null;
}

export function parseToolCall(text: string): ParseResult {
  const body = text.replace(/```[a-z]*\n?/gi, "").trim();
  if (body === "") return fail("unparseable", "empty reply; write one tool call such as read_email(id=e3)");
  const trimmed = body.trimStart();
  const jsonFirst = trimmed.startsWith("{");
  if (jsonFirst) {
    const json = parseJsonCall(body);
    if (json) return json;
  }
  const call = findCall(body);
  if (!call?.known) {
    const json = jsonFirst ? null : parseJsonCall(body);
    if (json) return json;
    if (call) return fail("unknown_tool", `unknown tool "${call[1]}"; use one of ${KNOWN}`);
    return fail("unparseable", 'no tool call found; write one such as search_emails(keywords="...")');
  }
  const open = call.index + call[0].length - 1;
  const close = closingParen(body, open);
  if (close < 0) return fail("unparseable", `unbalanced parentheses or quotes in ${call[1]}(...)`);
  const tool = resolveTool(call[1]!)!;
  const shown = TOOL_NAMES_SHOWN[tool];
  let list: ReturnType<typeof parseArgList>;
  try {
    list = parseArgList(body.slice(open + 1, close));
  } catch (err) {
    if (err instanceof ArgSyntaxError) return fail("unparseable", `${shown}: ${err.message}`);
    throw err;
  }
  const args: Record<string, RawValue> = Object.fromEntries(list.named);
  if (list.positional.length > 1) {
    return fail("bad_arguments", `${shown} takes at most one positional argument (${PRIMARY[tool]})`);
  }
  if (list.positional.length === 1) {
    if (PRIMARY[tool] in args) return fail("bad_arguments", `${shown}: ${PRIMARY[tool]} given twice`);
    args[PRIMARY[tool]] = list.positional[0]!;
  }
  return validate(tool, args);
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** The canonical compact text of a call; `parseToolCall(formatToolCall(c))` gives `c` back. */
export function formatToolCall(call: ToolCall): string {
  if (call.tool === "read_email") return `read_email(id=${call.args.id})`;
  if (call.tool === "return_final_answer") {
    const sources = call.args.sources.length > 0 ? `, sources=${quote(call.args.sources.join(" "))}` : "";
    return `answer(${quote(call.args.answer)}${sources})`;
  }
  const a = call.args;
  const parts = [`keywords=${quote(a.keywords.join(" "))}`];
  for (const key of ["from", "to", "sent_after", "sent_before"] as const) {
    if (a[key] !== undefined) parts.push(`${key}=${quote(a[key]!)}`);
  }
  if (a.max_results !== undefined) parts.push(`max_results=${a.max_results}`);
  return `search_emails(${parts.join(", ")})`;
}
