/** Model discovery and the graph scan before any session exists (issue 12): the published
 *  file names are found, several candidates are refused with MODEL_FILE named, a Git LFS
 *  pointer is recognised, and every external-data file the graph references (initializers,
 *  and tensor attributes of Constant nodes as ONNX Runtime reads them) is named when missing
 *  or too short, reading only the file's headers. */
import assert from "node:assert/strict";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { ModelLoadError } from "../../worker/errors.js";
import { writeExportLayout } from "../../kit/test-model/export-layouts.js";
import { locateModelFiles } from "../../worker/adapters/model-files.js";
import { scanOnnxGraph } from "../../worker/adapters/onnx-graph-scan.js";
import { modelFolder, testModel } from "../../kit/harness.js";

const { onnx } = onnxProto;
const root = mkdtempSync(path.join(os.tmpdir(), "model-files-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding the default test model's tokenizer and config plus `models` (relative paths). */
async function folder(name: string, models: string[]): Promise<string> {
  const src = await testModel();
  const dir = await modelFolder(path.join(root, name));
  for (const m of models) {
    mkdirSync(path.dirname(path.join(dir, m)), { recursive: true });
    copyFileSync(src.modelPath, path.join(dir, m));
  }
  return dir;
}

test("a published file name is found in the folder or its onnx/ folder", async () => {
  for (const name of ["model_fp16.onnx", "onnx/model_quantized.onnx", "onnx/bge_m3_model.onnx"]) {
    const dir = await folder(`one-${name.replace("/", "-")}`, [name]);
    assert.equal(locateModelFiles(dir).modelPath, path.join(dir, name));
  }
});

test("several candidates are refused, listed, with MODEL_FILE named; MODEL_FILE picks one", async () => {
  const dir = await folder("several", ["onnx/model.onnx", "onnx/model_fp16.onnx", "onnx/model_quantized.onnx"]);
  assert.throws(
    () => locateModelFiles(dir),
    (e: Error) =>
      e instanceof ModelLoadError &&
      e.message.includes("several ONNX models (onnx/model.onnx, onnx/model_fp16.onnx, onnx/model_quantized.onnx)") &&
      /set MODEL_FILE/.test(e.message),
  );
  assert.equal(locateModelFiles(dir, "onnx/model_fp16.onnx").modelPath, path.join(dir, "onnx/model_fp16.onnx"));
  assert.throws(() => locateModelFiles(dir, "model.onnx"), /MODEL_FILE "model.onnx" does not exist in MODEL_DIR/);
});

test("a Git LFS pointer instead of the model is named as such", async () => {
  const dir = await folder("lfs", []);
  writeFileSync(path.join(dir, "model.onnx"), "version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 2271\n");
  assert.throws(() => locateModelFiles(dir), /model\.onnx is not an ONNX model \(it is a Git LFS pointer/);
});

test("declared inputs and outputs are read from the headers only", async () => {
  const { modelPath } = await testModel();
  const scan = scanOnnxGraph(modelPath);
  assert.deepEqual(
    scan.inputs.map((v) => [v.name, v.elemType, v.shape]),
    [
      ["input_ids", 7, ["batch", "sequence"]],
      ["attention_mask", 7, ["batch", "sequence"]],
    ],
  );
  assert.deepEqual(
    scan.outputs.map((v) => v.name),
    ["dense_vecs", "sparse_vecs", "colbert_vecs"],
  );
  assert.deepEqual(scan.external, []);
  const size = statSync(modelPath).size;
  assert.ok(scan.bytesRead < size / 8, `read ${scan.bytesRead} of ${size} bytes`);
});

test("a missing or truncated external-data file of an initializer is named", async () => {
  const dir = path.join(root, "renamed");
  await writeExportLayout(dir, "renamed");
  assert.deepEqual(locateModelFiles(dir).externalFiles, ["bge_m3_model.onnx_data"]);
  const data = path.join(dir, "bge_m3_model.onnx_data");
  truncateSync(data, statSync(data).size - 1);
  assert.throws(
    () => locateModelFiles(dir),
    /too short: bge_m3_model\.onnx_data has \d+ bytes, the graph reads up to byte/,
  );
  unlinkSync(data);
  assert.throws(
    () => locateModelFiles(dir),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /external data files that are missing: bge_m3_model\.onnx_data \(holds embeddings\./.test(e.message),
  );
});

/** y = x + c, where c is a Constant node whose value tensor lives in `Constant_7_attr__value`. */
function constantExternalModel(): Uint8Array {
  const f4 = { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } };
  const external = [
    { key: "location", value: "Constant_7_attr__value" },
    { key: "offset", value: "0" },
    { key: "length", value: "16" },
  ];
  const t = { dims: [4], dataType: 1, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: external };
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name: "g",
        node: [
          {
            opType: "Constant",
            name: "Constant_7",
            output: ["c"],
            attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t }],
          },
          { opType: "Add", name: "add", input: ["x", "c"], output: ["y"] },
        ],
        input: [{ name: "x", type: f4 }],
        output: [{ name: "y", type: f4 }],
      },
    }),
  ).finish();
}

test("a Constant node's external tensor attribute is found, named when missing, and is what ORT reads", async () => {
  const dir = await folder("constant", []);
  writeFileSync(path.join(dir, "model.onnx"), constantExternalModel());
  assert.throws(() => locateModelFiles(dir), /missing: Constant_7_attr__value \(holds node Constant_7\)/);
  writeFileSync(path.join(dir, "Constant_7_attr__value"), new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer));
  const files = locateModelFiles(dir);
  assert.deepEqual(files.externalFiles, ["Constant_7_attr__value"]);
  assert.deepEqual(
    files.declared.outputs.map((v) => [v.name, v.elemType, v.shape]),
    [["y", 1, [4]]],
  );
  const session = await ort.InferenceSession.create(files.modelPath);
  try {
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([10, 20, 30, 40]), [4]) });
    assert.deepEqual([...(out.y.data as Float32Array)], [11, 22, 33, 44]);
  } finally {
    await session.release();
  }
});

test("external tensors inside subgraphs (If branches) and sparse initializers are found too", () => {
  const ext = (location: string) => ({
    name: location,
    dims: [2],
    dataType: 1,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: "location", value: location },
      { key: "offset", value: "8" },
      { key: "length", value: "8" },
    ],
  });
  const branch = { name: "then", initializer: [ext("then_weights.bin")], output: [{ name: "then_weights.bin" }] };
  const file = path.join(root, "subgraph.onnx");
  writeFileSync(
    file,
    onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: "", version: 17 }],
        graph: {
          name: "g",
          node: [
            {
              opType: "If",
              name: "if",
              input: ["c"],
              output: ["y"],
              attribute: [
                { name: "then_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch },
                { name: "else_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: { ...branch, name: "else" } },
              ],
            },
          ],
          sparseInitializer: [{ values: ext("sparse_values.bin"), indices: { name: "i", dims: [2], dataType: 7 } }],
        },
      }),
    ).finish(),
  );
  const scan = scanOnnxGraph(file);
  assert.deepEqual(
    scan.external.map((e) => [e.tensor, e.location, e.offset, e.length]),
    [
      ["then_weights.bin", "then_weights.bin", 8, 8],
      ["then_weights.bin", "then_weights.bin", 8, 8],
      ["sparse_values.bin", "sparse_values.bin", 8, 8],
    ],
  );
});
