import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const PROMPT_NAMES = [
  "generator_scaffold",
  "judge",
  "answer_fallback",
  "answer_equivalence",
  "fusion",
  "fusion_judge",
  "summarise",
  "extract",
] as const;
export type PromptName = (typeof PROMPT_NAMES)[number];

/**
 * The built-in templates, found beside this module at run time: the one place that knows where
 * they are, so a compiled build only has to copy prompts/ next to the compiled file.
 */
export const DEFAULT_PROMPT_DIR = join(dirname(fileURLToPath(import.meta.url)), "prompts");

/**
 * Prompt templates are plain text files read at run time, so they can be tuned without touching
 * code. An override directory only needs the files it changes; the rest come from the defaults.
 */
export class PromptSet {
  private readonly cache = new Map<PromptName, string>();

  constructor(private readonly overrideDir?: string) {}

  template(name: PromptName): string {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const override = this.overrideDir ? join(this.overrideDir, `${name}.txt`) : undefined;
    const path = override && existsSync(override) ? override : join(DEFAULT_PROMPT_DIR, `${name}.txt`);
    if (!existsSync(path)) throw new Error(`prompt template ${name} not found: ${path}`);
    const text = readFileSync(path, "utf8");
    this.cache.set(name, text);
    return text;
  }

  render(name: PromptName, vars: Record<string, string | number>): string {
    return renderTemplate(this.template(name), vars, name);
  }
}

/**
 * Replace `{{key}}` placeholders. A placeholder without a value is an error rather than left in
 * the prompt, because a model would otherwise silently see the raw braces.
 */
export function renderTemplate(
  template: string,
  vars: Record<string, string | number>,
  name = "template",
): string {
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, key: string) => {
    if (!(key in vars)) throw new Error(`prompt ${name}: no value for placeholder {{${key}}}`);
    return String(vars[key]);
  });
}
