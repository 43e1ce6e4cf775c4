/**
 * `Intl.Segmenter` fed bounded windows of a long text. V8's segment iterator
 * spends time proportional to the whole input for every segment it yields,
 * so iterating one long string is quadratic: on Node 20 here, 1 MiB of short
 * sentences took 121 s and the graphemes of a 64 KiB word 4 s (issue 13).
 * Segmenting a few KiB at a time keeps the cost linear, at the price of
 * re-segmenting each window's last (possibly unfinished) segment.
 *
 * A segment is cut only when it is longer than `maxWindow` characters; it is
 * then cut at the window's end, never inside a surrogate pair. The window
 * grows (doubling, up to `maxWindow`) only while it holds a single segment.
 * Re-segmenting from a break loses the context before it, which for the
 * sentence rules may move a rare break; the text itself is always kept whole.
 */

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/** The segments of `text` in order; their concatenation is `text`. */
export function* boundedSegments(
  text: string,
  segmenter: Intl.Segmenter,
  window: number,
  maxWindow = window,
): Generator<string> {
  let pos = 0;
  let size = window;
  while (pos < text.length) {
    let end = Math.min(text.length, pos + size);
    if (end < text.length && end - pos > 1 && isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
    let last = { segment: "", index: 0 };
    for (const s of segmenter.segment(text.slice(pos, end))) {
      if (s.index > 0) yield last.segment;
      last = s;
    }
    if (end === text.length) {
      yield last.segment;
      return;
    }
    if (last.index > 0) {
      pos += last.index; // the last segment may go on past the window: segment it again from its start
      size = window;
    } else if (size < maxWindow) {
      size = Math.min(maxWindow, size * 2); // one segment fills the window: look further before cutting it
    } else {
      yield last.segment;
      pos = end;
      size = window;
    }
  }
}
