/**
 * Staged reward: the phase rises once the success rate, averaged over the last `window`
 * steps, reaches `threshold`. Averaging keeps one lucky batch from skipping a stage.
 */
export interface CurriculumConfig {
  phases: number;
  threshold: number;
  window: number;
}

export interface CurriculumState {
  phase: number;
  recent: number[];
}

export class Curriculum {
  phase = 1;
  private recent: number[] = [];

  constructor(readonly cfg: CurriculumConfig) {
    if (!(Number.isInteger(cfg.phases) && cfg.phases >= 1))
      throw new Error(`curriculum: phases must be an integer ≥ 1, got ${cfg.phases}`);
    if (!(cfg.threshold > 0 && cfg.threshold <= 1))
      throw new Error(`curriculum: threshold must be in (0, 1], got ${cfg.threshold}`);
    if (!(Number.isInteger(cfg.window) && cfg.window >= 1))
      throw new Error(`curriculum: window must be an integer ≥ 1, got ${cfg.window}`);
  }

  /** Records one step's success rate; returns true when this raised the phase. */
  update(successRate: number): boolean {
    if (this.phase >= this.cfg.phases) return false;
    this.recent.push(successRate);
    if (this.recent.length > this.cfg.window) this.recent.shift();
    const mean = this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    if (this.recent.length === this.cfg.window && mean >= this.cfg.threshold) {
      this.phase++;
      // The new phase is harder; its success rate starts from scratch.
      this.recent = [];
      return true;
    }
    return false;
  }

  getState(): CurriculumState {
    return { phase: this.phase, recent: [...this.recent] };
  }

  setState(s: CurriculumState): void {
    if (!(Number.isInteger(s.phase) && s.phase >= 1 && s.phase <= this.cfg.phases)) {
      throw new Error(`curriculum: phase ${s.phase} outside 1..${this.cfg.phases}`);
    }
    this.phase = s.phase;
    this.recent = [...s.recent];
  }
}
