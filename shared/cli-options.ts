/** Argument parsers for the commander CLIs (producer, bench, soak, model generator): each
 *  rejects with a message commander prints beside the option. */
import { InvalidArgumentError } from "commander";

/** A whole number in [min, max]. */
export const intInRange =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        max === Number.MAX_SAFE_INTEGER
          ? `expected a whole number >= ${min}`
          : `expected a whole number from ${min} to ${max}`,
      );
    }
    return n;
  };
