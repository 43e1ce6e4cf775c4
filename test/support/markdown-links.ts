/** Reads the links and heading anchors of a Markdown page the way GitHub renders it, so a test can
 *  check that every relative link in the README and docs/ resolves to a file and, with `#anchor`,
 *  to a heading of that file. Fenced code blocks and inline code are not Markdown and are skipped.
 *  Pure: text in, lists out. */

export interface MarkdownLink {
  /** 1-based line of the page. */
  line: number;
  target: string;
}

/** The page's lines with fenced code blocks blanked (so line numbers stay). */
function withoutFences(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return "";
    }
    return fenced ? "" : line;
  });
}

/** Every `[text](target)` and `![alt](target)` outside code, with an optional "title" dropped. */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  withoutFences(markdown).forEach((line, i) => {
    const text = line.replace(/(`+)[^`]*?\1/g, "");
    const targets = text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g);
    for (const m of targets) links.push({ line: i + 1, target: m[1] });
  });
  return links;
}

/** Top-level folders of this repository: a code span naming a path under one of them names a file. */
const REPO_FOLDERS = "test|bench|shared|worker|producer|demo|samples|k8s|grafana|deploy|docs|kit";

/** Every inline code span outside fenced blocks that is exactly a path in this repository (`test/x.test.ts`,
 *  `k8s/base/`, `dist/bench/e2e/report.js`), without placeholders or globs. */
export function codePaths(markdown: string): MarkdownLink[] {
  const pathLike = new RegExp(`^(?:\\./)?(?:dist/)?(?:${REPO_FOLDERS})/[\\w./-]*$`);
  const paths: MarkdownLink[] = [];
  withoutFences(markdown).forEach((line, i) => {
    for (const m of line.matchAll(/(`+)([^`]*?)\1/g)) {
      if (pathLike.test(m[2].trim())) paths.push({ line: i + 1, target: m[2].trim().replace(/^\.\//, "") });
    }
  });
  return paths;
}

/** True for links that leave the repository (a scheme such as `https:` or `mailto:`). */
export function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target);
}

/** GitHub's heading id: lower case, punctuation dropped (letters, digits, `_` and `-` kept), spaces to `-`;
 *  a repeated heading gets `-1`, `-2`, ... */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of withoutFences(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}
