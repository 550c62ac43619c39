// What contracts/build.mjs and contracts/capabilities/build.mjs share: the stable
// serialisation of an artifact and the writing (or --check) of an artifacts folder.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

// sha256 hex of a UTF-8 text.
export const sha256 = (text) => createHash("sha256").update(text, "utf8").digest("hex");

// Objects with keys sorted (recursively), arrays kept in order: a stable serialisation.
export function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
  }
  return value;
}

// Make outDir hold exactly the files of `wanted` (Map: file name -> text), or with
// `check` only compare: each file that is missing, differs or is extra (a .json with no
// entry in `wanted`) is named on stderr, then fail(1, "<n> artifact(s) <stale>").
// Writing: stale .json files are removed and changed ones written, each named on stdout.
//   opts: { check, fail(code, message), stale: the text after the count,
//           extraNote: appended to each "extra:" line (default none) }
export function syncArtifacts(outDir, wanted, { check, fail, stale, extraNote = "" }) {
  const present = fs.existsSync(outDir)
    ? fs.readdirSync(outDir).filter((f) => f.endsWith(".json")).sort()
    : [];
  const rel = (f) => path.relative(process.cwd(), path.join(outDir, f)) || f;
  if (check) {
    const problems = [];
    for (const [file, text] of wanted) {
      const p = path.join(outDir, file);
      if (!fs.existsSync(p)) problems.push(`missing: ${rel(file)}`);
      else if (fs.readFileSync(p, "utf8") !== text) problems.push(`differs: ${rel(file)}`);
    }
    for (const file of present) if (!wanted.has(file)) problems.push(`extra: ${rel(file)}${extraNote}`);
    if (problems.length) {
      for (const p of problems) process.stderr.write(`${p}\n`);
      fail(1, `${problems.length} artifact(s) ${stale}`);
    }
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of present) {
    if (!wanted.has(file)) {
      fs.unlinkSync(path.join(outDir, file));
      process.stdout.write(`removed ${rel(file)}\n`);
    }
  }
  for (const [file, text] of wanted) {
    const p = path.join(outDir, file);
    if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== text) {
      fs.writeFileSync(p, text);
      process.stdout.write(`wrote ${rel(file)}\n`);
    }
  }
}
