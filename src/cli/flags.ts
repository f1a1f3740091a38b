/** Argument parsers for numeric flags; commander prints their message with the flag's name. */
import { InvalidArgumentError } from "commander";

export function intFlag(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

/** `open`: the lower bound itself is refused, as for a learning rate or a temperature. */
export function floatFlag(flag: string, min: number, max = Number.POSITIVE_INFINITY, open = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (open && n === min)) {
      throw new InvalidArgumentError(
        `${flag} must be a number in ${open ? "(" : "["}${min}, ${max}], got "${v}"`,
      );
    }
    return n;
  };
}
