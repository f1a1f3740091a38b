/**
 * Word- or character-level vocabulary. Recipes list their own tokens; ids follow list order,
 * with special tokens (pad, bos, eos, unk) placed first when they are not already listed.
 */
export interface VocabSpecials {
  pad?: string;
  bos?: string;
  eos?: string;
  unk?: string;
}

export interface VocabOptions {
  /**
   * "word" splits on whitespace and joins with one space; "char" maps each character; "pieces"
   * takes, at each position, the longest token that matches there (tokens may hold spaces and
   * punctuation) and joins with nothing, so that single-character tokens make it lossless.
   */
  mode?: "word" | "char" | "pieces";
}

export class Vocab {
  readonly tokens: readonly string[];
  readonly mode: "word" | "char" | "pieces";
  readonly padId?: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly unkId?: number;
  private readonly index = new Map<string, number>();
  private readonly specialIds = new Set<number>();
  /** pieces mode: the longest token that is not a special, in characters. */
  private readonly longestPiece: number = 1;

  constructor(tokens: string[], specials: VocabSpecials = {}, opts: VocabOptions = {}) {
    this.mode = opts.mode ?? "word";
    const extra = (["pad", "bos", "eos", "unk"] as const)
      .map((k) => specials[k])
      .filter((t): t is string => t !== undefined && !tokens.includes(t));
    const all = [...new Set(extra), ...tokens];
    all.forEach((t, i) => {
      if (t.length === 0) throw new Error(`Vocab: token ${i} is the empty string`);
      if (this.mode === "word" && /\s/.test(t))
        throw new Error(`Vocab: token ${JSON.stringify(t)} contains whitespace`);
      if (this.mode === "char" && [...t].length !== 1 && !Object.values(specials).includes(t)) {
        throw new Error(`Vocab: token ${JSON.stringify(t)} is not a single character (char mode)`);
      }
      if (this.index.has(t)) throw new Error(`Vocab: duplicate token ${JSON.stringify(t)}`);
      this.index.set(t, i);
    });
    this.tokens = all;
    if (specials.pad !== undefined) this.padId = this.index.get(specials.pad);
    if (specials.bos !== undefined) this.bosId = this.index.get(specials.bos);
    if (specials.eos !== undefined) this.eosId = this.index.get(specials.eos);
    if (specials.unk !== undefined) this.unkId = this.index.get(specials.unk);
    for (const id of [this.padId, this.bosId, this.eosId, this.unkId])
      if (id !== undefined) this.specialIds.add(id);
    if (this.mode === "pieces")
      this.longestPiece = Math.max(1, ...all.filter((_, i) => !this.specialIds.has(i)).map((t) => t.length));
  }

  get size(): number {
    return this.tokens.length;
  }

  /** Id of a token; throws for unknown tokens. */
  id(token: string): number {
    const i = this.index.get(token);
    if (i === undefined) throw new Error(`Vocab: unknown token ${JSON.stringify(token)}`);
    return i;
  }

  has(token: string): boolean {
    return this.index.has(token);
  }

  token(id: number): string {
    const t = this.tokens[id];
    if (t === undefined) throw new Error(`Vocab: id ${id} is outside [0, ${this.size})`);
    return t;
  }

  /** Unknown pieces map to unk when defined, otherwise they throw naming the piece. */
  encode(text: string, opts: { bos?: boolean; eos?: boolean } = {}): number[] {
    if (this.mode === "pieces") return this.encodeTokens(this.splitPieces(text), opts);
    const pieces = this.mode === "word" ? text.split(/\s+/).filter((p) => p.length > 0) : [...text];
    return this.encodeTokens(pieces, opts);
  }

  /** Greedy longest match; a character no token starts with is a piece of its own (→ unk). */
  private splitPieces(text: string): string[] {
    const out: string[] = [];
    let i = 0;
    while (i < text.length) {
      let taken = "";
      for (let len = Math.min(this.longestPiece, text.length - i); len >= 1; len--) {
        const piece = text.slice(i, i + len);
        const id = this.index.get(piece);
        // Specials are written by the model, never spelled out in text.
        if (id !== undefined && !this.specialIds.has(id)) {
          taken = piece;
          break;
        }
      }
      // One code point (a surrogate pair stays whole), for the unk fallback.
      if (taken === "") taken = String.fromCodePoint(text.codePointAt(i)!);
      out.push(taken);
      i += taken.length;
    }
    return out;
  }

  encodeTokens(pieces: readonly string[], opts: { bos?: boolean; eos?: boolean } = {}): number[] {
    const out: number[] = [];
    if (opts.bos) out.push(this.required("bos", this.bosId));
    pieces.forEach((p, i) => {
      const id = this.index.get(p) ?? this.unkId;
      if (id === undefined) throw new Error(`Vocab: unknown token ${JSON.stringify(p)} at position ${i}`);
      out.push(id);
    });
    if (opts.eos) out.push(this.required("eos", this.eosId));
    return out;
  }

  /** Joins tokens (one space in word mode); pad/bos/eos/unk are dropped unless keepSpecials. */
  decode(ids: readonly number[], opts: { keepSpecials?: boolean } = {}): string {
    const parts = ids
      .filter((id) => opts.keepSpecials || !this.specialIds.has(id))
      .map((id) => this.token(id));
    return parts.join(this.mode === "word" ? " " : "");
  }

  private required(name: string, id: number | undefined): number {
    if (id === undefined) throw new Error(`Vocab: no ${name} token defined`);
    return id;
  }
}
