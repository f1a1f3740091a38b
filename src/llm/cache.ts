import { createHash } from "node:crypto";
import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../io/files.ts";
import type { ChatMessage } from "./port.ts";

/** Everything that decides a reply; two requests with equal keys may share one reply. */
export interface CacheKeyInput {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  responseFormatJson?: boolean;
  /** Tells apart the samples of one prompt (rollout i of a group), so each is cached on its own. */
  seed?: number;
}

export interface CachedReply {
  text: string;
  usage: { promptTokens: number; completionTokens: number };
}

interface CacheEntry extends CachedReply {
  request: CacheKeyInput;
  createdAt: string;
}

/** Key fields in a fixed order, absent ones as null, so that the hash does not depend on spelling. */
function canonical(input: CacheKeyInput): CacheKeyInput {
  return {
    model: input.model,
    messages: input.messages.map((m) => ({ role: m.role, content: m.content })),
    temperature: input.temperature,
    maxTokens: input.maxTokens,
    responseFormatJson: input.responseFormatJson ?? false,
    seed: input.seed,
  };
}

function canonicalJson(input: CacheKeyInput): string {
  return JSON.stringify(canonical(input), (_k, v) => (v === undefined ? null : v));
}

/**
 * A content-addressed on-disk cache of chat replies: `<dir>/<2 hex>/<sha256>.json`. Opt-in; it
 * makes reruns of an interrupted experiment free and exact. Entries are written atomically and
 * checked against the full request on read, so a damaged or colliding file is a miss, not a
 * wrong answer.
 */
export class RequestCache {
  readonly dir: string;
  hits = 0;
  misses = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  key(input: CacheKeyInput): string {
    return createHash("sha256").update(canonicalJson(input)).digest("hex");
  }

  pathFor(input: CacheKeyInput): string {
    const key = this.key(input);
    return join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  get(input: CacheKeyInput): CachedReply | undefined {
    const path = this.pathFor(input);
    if (!existsSync(path)) {
      this.misses++;
      return undefined;
    }
    try {
      const entry = JSON.parse(readFileSync(path, "utf8")) as CacheEntry;
      const same = JSON.stringify(entry.request) === canonicalJson(input);
      if (same && typeof entry.text === "string") {
        this.hits++;
        return {
          text: entry.text,
          usage: {
            promptTokens: Number(entry.usage?.promptTokens) || 0,
            completionTokens: Number(entry.usage?.completionTokens) || 0,
          },
        };
      }
    } catch {
      // An unreadable entry is treated as absent; the next put replaces it.
    }
    this.misses++;
    return undefined;
  }

  put(input: CacheKeyInput, reply: CachedReply): void {
    const entry: CacheEntry = {
      // Round-trip so that absent fields are stored as null and compare equal on read.
      request: JSON.parse(canonicalJson(input)) as CacheKeyInput,
      text: reply.text,
      usage: reply.usage,
      createdAt: new Date().toISOString(),
    };
    writeJsonAtomic(this.pathFor(input), entry);
  }

  /** Drops an entry, e.g. one whose text the current parser no longer accepts. */
  delete(input: CacheKeyInput): void {
    const path = this.pathFor(input);
    if (existsSync(path)) unlinkSync(path);
  }
}
