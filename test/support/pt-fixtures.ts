/** The `.pt` files PyTorch wrote (`test/fixtures/pt/`, made by `make-pt-fixtures.py`) and what each holds. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../../kit/harness.js";

export const PT_FIXTURES = path.join(repoRoot, "test", "fixtures", "pt");

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
}

export const expectedPt = JSON.parse(readFileSync(path.join(PT_FIXTURES, "expected.json"), "utf8")) as {
  files: Record<string, Record<string, ExpectedTensor>>;
};
