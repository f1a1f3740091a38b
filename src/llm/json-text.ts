/**
 * Pull the first JSON value of the wanted kind out of a model reply: replies often wrap it in a
 * code fence or add a sentence around it. Returns undefined when nothing parses.
 */
export function extractJsonValue(text: string, kind: "object" | "array" | "any" = "any"): unknown {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  const candidates = fenced ? [fenced[1]!, text] : [text];
  for (const source of candidates) {
    const trimmed = source.trim();
    try {
      const whole = JSON.parse(trimmed);
      if (matchesKind(whole, kind)) return whole;
    } catch {
      // fall through to scanning for an embedded value
    }
    const opens = kind === "object" ? ["{"] : kind === "array" ? ["["] : ["{", "["];
    for (let i = 0; i < source.length; i++) {
      if (!opens.includes(source[i]!)) continue;
      const end = matchingClose(source, i);
      if (end < 0) continue;
      try {
        const value = JSON.parse(source.slice(i, end + 1));
        if (matchesKind(value, kind)) return value;
      } catch {
        // not JSON at this position; keep scanning
      }
    }
  }
  return undefined;
}

function matchesKind(value: unknown, kind: "object" | "array" | "any"): boolean {
  if (kind === "array") return Array.isArray(value);
  if (kind === "object") return typeof value === "object" && value !== null && !Array.isArray(value);
  return typeof value === "object" && value !== null;
}

/** Index of the bracket closing the one at `start`, honouring strings; -1 if unbalanced. */
function matchingClose(s: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < s.length; i++) {
    const c = s[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}
