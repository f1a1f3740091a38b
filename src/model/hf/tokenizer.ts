/**
 * Hugging Face tokenizers: tokenizer.json (+ tokenizer_config.json) through
 * `@huggingface/tokenizers` (the tokenizer of transformers.js, pure JS, no dependencies), and
 * chat templates rendered with `@huggingface/jinja` as transformers' apply_chat_template does:
 * the template from tokenizer_config.json's `chat_template` (a string, or a list of named
 * templates) or from chat_template.jinja, with `messages`, `add_generation_prompt`, `tools`
 * and the special tokens as variables; the rendered text is encoded without adding special
 * tokens again (the template writes them).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { FileFormatError, readJsonFile } from "../../io/files.ts";
import { CONFIG_FILE, readGenerationConfig, tokenIdList } from "./config.ts";

export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
export const CHAT_TEMPLATE_FILE = "chat_template.jinja";

export interface ChatMessage {
  role: string;
  content?: string | null;
  /** any other field a template reads (tool_calls, name, tool_call_id, reasoning_content, …). */
  [field: string]: unknown;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** JSON-schema tool definitions, passed to the template as `tools`. */
  tools?: unknown[];
  /** a named template of a tokenizer_config.json that lists several (default: "default"). */
  templateName?: string;
  /** further template variables (e.g. enable_thinking for Qwen3). */
  variables?: Record<string, unknown>;
}

function readObject(file: string): Record<string, unknown> {
  const v = readJsonFile(file);
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new FileFormatError(file, undefined, undefined, "expected a JSON object");
  return v as Record<string, unknown>;
}

/** A special token of tokenizer_config.json: a string or an AddedToken object `{content, …}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  return undefined;
}

export class HFTokenizer {
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly padToken?: string;
  readonly unkToken?: string;
  /** every id that ends a generation: tokenizer_config's eos token, generation_config.json's and config.json's eos ids. */
  readonly eosTokenIds: number[];
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
  private readonly tok: Tokenizer;
  private readonly templates = new Map<string, string>();
  private readonly compiled = new Map<string, Template>();
  private readonly cleanUp: boolean;
  private readonly specialIds: Set<number>;
  private readonly size: number;

  constructor(
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
    opts: { chatTemplate?: string; extraEosIds?: number[]; source?: string } = {},
  ) {
    const where = opts.source ?? "tokenizer";
    try {
      this.tok = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.padToken = tokenText(config.pad_token);
    this.unkToken = tokenText(config.unk_token);
    // transformers ≥ 4.45 defaults to no clean-up; files that want it say so.
    this.cleanUp = config.clean_up_tokenization_spaces === true;
    const id = (t?: string) => (t === undefined ? undefined : this.tok.token_to_id(t));
    this.bosTokenId = id(this.bosToken);
    this.padTokenId = id(this.padToken);
    const eos = new Set<number>();
    const eosId = id(this.eosToken);
    if (eosId !== undefined) eos.add(eosId);
    for (const e of opts.extraEosIds ?? []) eos.add(e);
    this.eosTokenIds = [...eos];
    this.specialIds = new Set(this.tok.get_added_tokens_decoder().keys());
    for (const [i, t] of this.tok.get_added_tokens_decoder()) if (!t.special) this.specialIds.delete(i);
    this.size = Math.max(...this.tok.get_vocab(true).values()) + 1;
    const ct = config.chat_template;
    if (typeof ct === "string") this.templates.set("default", ct);
    else if (Array.isArray(ct)) {
      for (const e of ct) {
        const { name, template } = (e ?? {}) as { name?: unknown; template?: unknown };
        if (typeof name === "string" && typeof template === "string") this.templates.set(name, template);
      }
    }
    if (opts.chatTemplate !== undefined && !this.templates.has("default"))
      this.templates.set("default", opts.chatTemplate);
  }

  /**
   * tokenizer.json and tokenizer_config.json of `dir` (the latter optional), chat_template.jinja
   * when tokenizer_config.json has no template, and the eos ids of generation_config.json and
   * config.json.
   */
  static load(dir: string): HFTokenizer {
    const file = join(dir, TOKENIZER_FILE);
    const json = readObject(file);
    const cfgFile = join(dir, TOKENIZER_CONFIG_FILE);
    const config = existsSync(cfgFile) ? readObject(cfgFile) : {};
    const jinja = join(dir, CHAT_TEMPLATE_FILE);
    const chatTemplate = existsSync(jinja) ? readFileSync(jinja, "utf8") : undefined;
    const extra: number[] = [...(readGenerationConfig(dir)?.eosTokenIds ?? [])];
    const modelCfg = join(dir, CONFIG_FILE);
    if (existsSync(modelCfg))
      extra.push(...tokenIdList(modelCfg, "eos_token_id", readObject(modelCfg).eos_token_id));
    return new HFTokenizer(json, config, { chatTemplate, extraEosIds: extra, source: file });
  }

  /** one more than the highest id, added tokens included. */
  get vocabSize(): number {
    return this.size;
  }

  get hasChatTemplate(): boolean {
    return this.templates.size > 0;
  }

  /** Token ids of `text`; `addSpecialTokens` (default true) applies the post-processor (e.g. Llama's bos). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** The tokens (strings) `text` splits into, without special tokens. */
  tokenize(text: string): string[] {
    return this.tok.tokenize(text);
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.tok.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUp,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** The conversation rendered by the chat template, as text. */
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const name = opts.templateName ?? "default";
    const source = this.templates.get(name);
    if (source === undefined) {
      throw new Error(
        this.templates.size === 0
          ? "this tokenizer has no chat template (tokenizer_config.json chat_template, chat_template.jinja)"
          : `no chat template named "${name}" (have: ${[...this.templates.keys()].join(", ")})`,
      );
    }
    let t = this.compiled.get(name);
    if (!t) {
      t = new Template(source);
      this.compiled.set(name, t);
    }
    return t.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      tools: opts.tools,
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: this.padToken ?? "",
      unk_token: this.unkToken ?? "",
      ...opts.variables,
    });
  }

  /** The ids of the rendered conversation (encoded without adding special tokens: the template writes them). */
  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}
