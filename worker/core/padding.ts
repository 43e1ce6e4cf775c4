/** Padded length of one sequence: the model pads every row of a batch to a multiple of
 *  `PAD_MULTIPLE`. Shared by the batch planner and the query-lane policy. Performs no I/O. */
export function padTo(length: number, multiple: number): number {
  return Math.ceil(length / multiple) * multiple;
}
