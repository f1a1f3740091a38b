/** Adam on flat number arrays, for small array-based models (the demo policy, tests). */

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export interface AdamState {
  step: number;
  m: number[];
  v: number[];
}

export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private state: AdamState;

  constructor(size: number, opts: AdamOptions) {
    if (!(opts.lr > 0)) throw new RangeError(`lr: must be > 0, got ${opts.lr}`);
    this.lr = opts.lr;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.state = { step: 0, m: new Array(size).fill(0), v: new Array(size).fill(0) };
  }

  /** Updates `params` in place, descending along `grad`. */
  step(params: number[], grad: readonly number[]): void {
    const { m, v } = this.state;
    if (params.length !== m.length || grad.length !== m.length) {
      throw new RangeError(
        `Adam.step: expected ${m.length} params and grads, got ${params.length} and ${grad.length}`,
      );
    }
    const t = ++this.state.step;
    const c1 = 1 - this.beta1 ** t;
    const c2 = 1 - this.beta2 ** t;
    for (let k = 0; k < params.length; k++) {
      const g = grad[k]!;
      m[k] = this.beta1 * m[k]! + (1 - this.beta1) * g;
      v[k] = this.beta2 * v[k]! + (1 - this.beta2) * g * g;
      params[k] = params[k]! - (this.lr * (m[k]! / c1)) / (Math.sqrt(v[k]! / c2) + this.eps);
    }
  }

  getState(): AdamState {
    return { step: this.state.step, m: [...this.state.m], v: [...this.state.v] };
  }

  setState(state: AdamState): void {
    if (state.m.length !== this.state.m.length || state.v.length !== this.state.v.length) {
      throw new RangeError(`Adam.setState: expected ${this.state.m.length} moments, got ${state.m.length}`);
    }
    this.state = { step: state.step, m: [...state.m], v: [...state.v] };
  }
}
