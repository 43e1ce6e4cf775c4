/** The query lane's policy, in one place: how query texts (the query API's requests) overtake
 *  queued job chunks. Trades a little queue throughput for query latency: a query batch is cut at
 *  once, never waits for company, runs ahead of every queued batch, and takes along only queued
 *  chunks that cost next to nothing. Three decisions live here, each a pure function:
 *  - `cutQueryBatch` (main thread, BatchPool): which texts and fill make the next query batch;
 *  - `queryLaneDepth` (main thread, scheduler): how many query batches the model thread may hold;
 *  - `nextModelRun` (model thread): which waiting batches run next, merged into one session run.
 *  Two budgets, both named here because they really differ: a query batch with its fill stays
 *  under `QUERY_FILL_TOKENS` padded tokens (it bounds how long a query's own batch runs), while
 *  query batches that met in the model thread merge up to `MAX_BATCH_TOKENS` (the device's batch
 *  budget: merging only saves a call's overhead, it never delays anyone). Both also stay under
 *  `MAX_BATCH_ATTENTION` attention cells (rows x padded length²): the device's memory bound.
 *  Naming: "query lane" is the one term in code and docs. The config keys keep their `QUERY_*`
 *  names, the metric label value stays `lane="interactive"` and the benchmark keeps its name
 *  `priority-lane`: renaming those would break users' settings, dashboards and stored results. */
import { attentionCells, rowsWithinAttention } from "./activation-memory.js";
import { padTo } from "./padding.js";

/** Metric label value of the query lane (kept from before the rename: dashboards query it). */
export const QUERY_LANE_LABEL = "interactive";
export type LaneLabel = typeof QUERY_LANE_LABEL | "queue";

export function laneLabel(queryLane: boolean | undefined): LaneLabel {
  return queryLane ? QUERY_LANE_LABEL : "queue";
}

/** The budget of a query batch with its fill, padded tokens: `QUERY_FILL_TOKENS`. */
export type QueryFillBudget = number;
/** The budget of one merged run in the model thread, padded tokens: `MAX_BATCH_TOKENS`. */
export type ModelRunBudget = number;

/** The query lane's two budgets are read from the configuration here and nowhere else. */
export const queryFillBudget = (cfg: { QUERY_FILL_TOKENS: number }): QueryFillBudget => cfg.QUERY_FILL_TOKENS;
export const modelRunBudget = (cfg: { MAX_BATCH_TOKENS: number }): ModelRunBudget => cfg.MAX_BATCH_TOKENS;
/** A merged run also stays under the attention-cell budget (rows x padded length²): MAX_BATCH_ATTENTION. */
export const modelRunAttention = (cfg: { MAX_BATCH_ATTENTION: number }): number => cfg.MAX_BATCH_ATTENTION;

/** A queued chunk rides in a query's batch only if it is at least this share of the batch's padded length. */
export const FILL_MIN_SHARE = 0.9;

export interface LaneLimits {
  maxBatchTokens: number;
  maxBatchSize: number;
  padMultiple: number;
  /** Attention cells (rows x padded length²) one batch may hold; unset = no limit. */
  maxBatchAttention?: number;
}

interface LaneItem {
  length: number;
  pooledAt: number;
}

/** The next query batch. Takes the waiting query texts, oldest first, as many as one batch
 *  holds, and pads them to the longest of them (L). Queued chunks then ride along, up to
 *  `fillTokens` padded tokens in all, but only where they cost next to nothing: a chunk joins
 *  only if it needs no more than L (so query rows are never padded for the queue's sake) and is
 *  at least `FILL_MIN_SHARE` of L long (its own padding stays small); the longest such chunks
 *  first. On a GPU a small batch costs about as much as a fuller one, so the fill is work the
 *  queue gets for free; on a CPU, where time grows with tokens, it costs the queue about what
 *  the same chunks would cost later. `queries` must not be empty. */
export function cutQueryBatch<T extends LaneItem>(
  queries: readonly T[],
  queued: readonly T[],
  limits: LaneLimits,
  fillTokens: QueryFillBudget,
): { lead: T[]; fill: T[]; paddedLength: number } {
  const { maxBatchSize, maxBatchTokens, padMultiple, maxBatchAttention } = limits;
  const byAge = [...queries].sort((a, b) => a.pooledAt - b.pooledAt);
  const lead: T[] = [];
  let L = 0;
  for (const it of byAge) {
    const next = Math.max(L, padTo(it.length, padMultiple));
    const rows = lead.length + 1;
    const over = next * rows > maxBatchTokens || attentionCells(rows, next) > (maxBatchAttention ?? Infinity);
    if (lead.length > 0 && (lead.length >= maxBatchSize || over)) break;
    lead.push(it);
    L = next;
  }
  const byBudget = Math.min(
    Math.floor(Math.min(fillTokens, maxBatchTokens) / L),
    rowsWithinAttention(L, maxBatchAttention),
  );
  const room = Math.min(maxBatchSize, byBudget) - lead.length;
  const fits = (it: T) => padTo(it.length, padMultiple) <= L && it.length >= FILL_MIN_SHARE * L;
  const fill = room > 0 ? queued.filter(fits) : [];
  fill.sort((a, b) => b.length - a.length).splice(Math.max(0, room));
  return { lead, fill, paddedLength: L };
}

/** Query batches handed to the model thread at once. A batch in the thread's inbox runs
 *  whatever happens to its requests; one still in the pool can be dropped when its request is
 *  cancelled, and batches there together with later arrivals. So the thread gets one at a time,
 *  plus a second waiting behind it only while queued batches are in the thread too: otherwise the
 *  queued batch waiting there would run before the next query batch arrives. With up to 8 here,
 *  ten abandoned 32-text requests had 224 of their texts embedded anyway (issue 13). */
export const QUERY_LANE_DEPTH = { alone: 1, besideQueued: 2 };

/** How many query batches may be in the model thread, given what is there now. */
export function queryLaneDepth(modelInFlight: number, queryInFlight: number): number {
  const queuedInThread = modelInFlight > queryInFlight;
  return queuedInThread ? QUERY_LANE_DEPTH.besideQueued : QUERY_LANE_DEPTH.alone;
}

/** A batch waiting in the model thread, as the merge rule sees it. */
export interface WaitingRun {
  /** Rows of the batch. */
  rows: number;
  paddedLength: number;
  queryLane?: boolean;
}

/** The model thread's choice of its next session run among the batches waiting there, oldest
 *  first: the oldest query batch with every other waiting query batch that fits beside it under
 *  `mergeTokens` padded tokens (rows x the longest padded length) and `mergeCells` attention cells
 *  (rows x the longest padded length², unset = no limit), else the oldest batch alone.
 *  Queued batches never merge: each was cut to the budget by the planner. `waiting` must not be
 *  empty. Returns the indexes into `waiting` of the run, in the order their rows are fed. */
export function nextModelRun(
  waiting: readonly WaitingRun[],
  mergeTokens: ModelRunBudget,
  mergeCells = Infinity,
): number[] {
  const first = waiting.findIndex((r) => r.queryLane);
  const leadAt = first >= 0 ? first : 0;
  const lead = waiting[leadAt];
  const run = [leadAt];
  if (!lead.queryLane) return run;
  let rows = lead.rows;
  let padded = lead.paddedLength;
  for (let i = 0; i < waiting.length; i++) {
    const r = waiting[i];
    if (i === leadAt || !r.queryLane) continue;
    const p = Math.max(padded, r.paddedLength);
    if (p * (rows + r.rows) > mergeTokens || attentionCells(rows + r.rows, p) > mergeCells) continue;
    run.push(i);
    rows += r.rows;
    padded = p;
  }
  return run;
}
