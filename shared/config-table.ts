/** `npm run config-table`: prints the configuration reference as the Markdown table the
 *  README carries, generated from the schema so the two cannot drift apart. */
import { describeConfig } from "./config.js";

export function configTable(): string {
  const rows = describeConfig().map((r) => `| \`${r.name}\` | ${r.default} | ${r.description.replace(/\|/g, "\\|")} |`);
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(configTable() + "\n");
