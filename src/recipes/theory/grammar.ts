import {
  type Field,
  formatY6,
  type SU2,
  SU2_ORDER,
  type SU3,
  SU3_ORDER,
  sortedTheory,
  type Theory,
} from "./fields.ts";

/**
 * Token vocabulary and constraint automaton for writing a theory. Each field is three tokens —
 * SU(3) rep, SU(2) rep, hypercharge ×6 — and the sequence ends with <eos>:
 *   <bos> 3 2 +1  3b 1 -4  3b 1 +2  1 2 -3  1 1 +6 <eos>
 * The token "1" serves both as the SU(3) and the SU(2) singlet; the slot disambiguates. Factoring
 * the field into three tokens keeps the vocabulary small (7 + number of hypercharges) and the
 * sequence short (3·maxFields + 1), both of which help a small policy.
 */

export interface GrammarOptions {
  /** Default 1. */
  minFields?: number;
  /** Default 16. */
  maxFields?: number;
  /** Inclusive range of Y6 = 6·Y. Default [-12, 12]. */
  y6Range?: [number, number];
  /**
   * Fields only in the conventional order (fields.ts's compareFields), so that every theory — a
   * multiset of fields — has exactly one spelling instead of up to n! of them. Default false.
   */
  sortedFields?: boolean;
}

export interface TheoryGrammarState {
  /** Completed fields. */
  readonly fields: number;
  /** Next token position inside the field: 0 = SU(3) (or <eos>), 1 = SU(2), 2 = hypercharge. */
  readonly slot: 0 | 1 | 2;
  readonly done: boolean;
  /** With sortedFields: the last complete field and the reps chosen so far for the next one. */
  readonly last?: Field;
  readonly su3?: SU3;
  readonly su2?: SU2;
}

const SLOT_NAMES = ["SU(3) rep or <eos>", "SU(2) rep", "hypercharge"] as const;
const SU3_REPS: readonly SU3[] = ["1", "3", "3b"];
const SU2_REPS: readonly SU2[] = ["1", "2"];
/** Larger hypercharge ranges would push the vocabulary past 64 tokens. */
const MAX_Y6_VALUES = 56;

export class TheoryGrammar {
  readonly vocab: string[];
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly minFields: number;
  readonly maxFields: number;
  readonly y6Range: [number, number];
  readonly sortedFields: boolean;
  /** Longest completion the grammar can produce, <eos> included (the prompt's <bos> is not). */
  readonly maxLength: number;

  private readonly index: Map<string, number>;
  private readonly slotMasks: [Uint8Array, Uint8Array, Uint8Array];

  constructor(opts: GrammarOptions = {}) {
    const minFields = opts.minFields ?? 1;
    const maxFields = opts.maxFields ?? 16;
    const [lo, hi] = opts.y6Range ?? [-12, 12];
    if (!Number.isInteger(minFields) || minFields < 1) {
      throw new Error(`theory grammar: minFields must be an integer ≥ 1, got ${minFields}`);
    }
    if (!Number.isInteger(maxFields) || maxFields < minFields) {
      throw new Error(
        `theory grammar: maxFields must be an integer ≥ minFields (${minFields}), got ${maxFields}`,
      );
    }
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo > hi) {
      throw new Error(
        `theory grammar: y6Range must be two integers [lo, hi] with lo ≤ hi, got [${lo}, ${hi}]`,
      );
    }
    if (hi - lo + 1 > MAX_Y6_VALUES) {
      throw new Error(`theory grammar: y6Range [${lo}, ${hi}] has more than ${MAX_Y6_VALUES} values`);
    }
    this.minFields = minFields;
    this.maxFields = maxFields;
    this.y6Range = [lo, hi];
    this.sortedFields = opts.sortedFields ?? false;
    this.maxLength = 3 * maxFields + 1;

    this.vocab = ["<pad>", "<bos>", "<eos>", "1", "2", "3", "3b"];
    for (let y = lo; y <= hi; y++) this.vocab.push(formatY6(y));
    this.index = new Map(this.vocab.map((tok, i) => [tok, i]));

    const mask = (tokens: string[]) => {
      const m = new Uint8Array(this.vocab.length);
      for (const tok of tokens) m[this.index.get(tok)!] = 1;
      return m;
    };
    this.slotMasks = [mask([...SU3_REPS]), mask([...SU2_REPS]), mask(this.vocab.slice(7))];
  }

  initial(): TheoryGrammarState {
    return { fields: 0, slot: 0, done: false };
  }

  /** 1 for each token that may come next. After <eos> only <pad> is allowed (batch padding). */
  allowed(state: TheoryGrammarState): Uint8Array {
    if (state.done) {
      const m = new Uint8Array(this.vocab.length);
      m[this.padId] = 1;
      return m;
    }
    const m =
      state.slot !== 0 || state.fields < this.maxFields
        ? this.slotMasks[state.slot].slice()
        : new Uint8Array(this.vocab.length);
    if (this.sortedFields && state.last) this.keepSorted(state, m);
    if (state.slot === 0 && state.fields >= this.minFields) m[this.eosId] = 1;
    return m;
  }

  /** Clears, in a slot's mask, the tokens that would put the field before the previous one. */
  private keepSorted(state: TheoryGrammarState, m: Uint8Array): void {
    const last = state.last!;
    const clear = (tokens: readonly string[], below: (tok: string) => boolean) => {
      for (const tok of tokens) if (below(tok)) m[this.index.get(tok)!] = 0;
    };
    if (state.slot === 0) clear(SU3_REPS, (r) => SU3_ORDER[r as SU3] < SU3_ORDER[last.su3]);
    else if (state.slot === 1) {
      if (state.su3 === last.su3) clear(SU2_REPS, (r) => SU2_ORDER[r as SU2] < SU2_ORDER[last.su2]);
    } else if (state.su3 === last.su3 && state.su2 === last.su2) {
      clear(this.vocab.slice(7), (y) => Number(y) < last.y6);
    }
  }

  /** The state after `token`; throws if the token is not allowed in `state`. */
  advance(state: TheoryGrammarState, token: number): TheoryGrammarState {
    if (
      !Number.isInteger(token) ||
      token < 0 ||
      token >= this.vocab.length ||
      this.allowed(state)[token] !== 1
    ) {
      const name = this.vocab[token] ?? "out of vocabulary";
      const where = state.done ? "after <eos>" : `at field ${state.fields + 1}, ${SLOT_NAMES[state.slot]}`;
      throw new Error(`theory grammar: token ${token} ("${name}") is not allowed ${where}`);
    }
    if (state.done) return state;
    if (token === this.eosId) return { ...state, slot: 0, done: true };
    if (!this.sortedFields) {
      if (state.slot === 2) return { fields: state.fields + 1, slot: 0, done: false };
      return { fields: state.fields, slot: state.slot === 0 ? 1 : 2, done: false };
    }
    const text = this.vocab[token]!;
    if (state.slot === 0) return { ...state, slot: 1, su3: text as SU3 };
    if (state.slot === 1) return { ...state, slot: 2, su2: text as SU2 };
    const last: Field = { su3: state.su3!, su2: state.su2!, y6: Number(text) };
    return { fields: state.fields + 1, slot: 0, done: false, last };
  }

  isDone(state: TheoryGrammarState): boolean {
    return state.done;
  }

  /**
   * The theory written by a token sequence (an optional leading <bos>, fields, <eos>, optional
   * trailing <pad>s), or null if the sequence breaks the grammar or never reaches <eos>.
   */
  decode(tokens: readonly number[]): Theory | null {
    let state = this.initial();
    const theory: Theory = [];
    let su3: SU3 = "1";
    let su2: SU2 = "1";
    const start = tokens[0] === this.bosId ? 1 : 0;
    for (let i = start; i < tokens.length; i++) {
      const tok = tokens[i]!;
      if (!Number.isInteger(tok) || this.allowed(state)[tok] !== 1) return null;
      const text = this.vocab[tok]!;
      if (!state.done && tok !== this.eosId) {
        if (state.slot === 0) su3 = text as SU3;
        else if (state.slot === 1) su2 = text as SU2;
        else theory.push({ su3, su2, y6: Number(text) });
      }
      state = this.advance(state, tok);
    }
    return state.done ? theory : null;
  }

  /**
   * Tokens of a theory, without <bos>, with <eos> (with sortedFields, of its fields in the
   * conventional order). Throws if the theory is outside the grammar.
   */
  encode(theory: Theory): number[] {
    if (theory.length < this.minFields || theory.length > this.maxFields) {
      throw new Error(
        `theory grammar: a theory needs ${this.minFields}..${this.maxFields} fields, got ${theory.length}`,
      );
    }
    const [lo, hi] = this.y6Range;
    theory.forEach((f: Field, i) => {
      if (!SU3_REPS.includes(f.su3))
        throw new Error(`theory grammar: field ${i + 1} su3: unknown rep "${f.su3}"`);
      if (!SU2_REPS.includes(f.su2))
        throw new Error(`theory grammar: field ${i + 1} su2: unknown rep "${f.su2}"`);
      if (!Number.isInteger(f.y6) || f.y6 < lo || f.y6 > hi) {
        throw new Error(`theory grammar: field ${i + 1} y6: ${f.y6} is outside [${lo}, ${hi}]`);
      }
    });
    const fields = this.sortedFields ? sortedTheory(theory) : theory;
    const out = fields.flatMap((f) => [
      this.index.get(f.su3)!,
      this.index.get(f.su2)!,
      this.index.get(formatY6(f.y6))!,
    ]);
    out.push(this.eosId);
    return out;
  }

  /** Space-separated token strings, for logs. */
  tokensToString(tokens: readonly number[]): string {
    return tokens.map((t) => this.vocab[t] ?? `<${t}?>`).join(" ");
  }
}
