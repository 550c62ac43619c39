#!/usr/bin/env node
// Compile every contracts/*.sol with the pinned solc (npm `solc`, solcjs/wasm) into one
// JSON artifact per contract: contracts/artifacts/<ContractName>.json.
//
// Usage:
//   node contracts/build.mjs                 rebuild the artifacts (and drop stale ones)
//   node contracts/build.mjs --check         rebuild in memory; exit 1 naming each
//                                            artifact that differs, is missing or extra
//   node contracts/build.mjs --dir PATH      use PATH instead of this folder (sources in
//                                            PATH/*.sol, artifacts in PATH/artifacts)
//
// Determinism: one standard-JSON compile of all files with every setting fixed
// (optimizer on, 200 runs, evmVersion cancun, no metadata hash, source unit names
// "contracts/<File>.sol" whatever the folder), artifacts written with a fixed key order,
// 2-space indent and a trailing newline, so a rebuild is byte-for-byte identical.
// Imports resolve against the contracts folder, then the repo's node_modules.
//
// Exit codes: 0 ok, 1 artifacts stale (--check), 2 compile error or bad usage.

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { sha256, sortKeys, syncArtifacts } from "./artifact_files.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const require = createRequire(path.join(REPO, "package.json"));

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  viaIR: false,
  metadata: { bytecodeHash: "none", useLiteralContent: false },
  remappings: [],
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function fail(code, message) {
  process.stderr.write(`build.mjs: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { check: false, dir: HERE };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--check") opts.check = true;
    else if (a === "--dir") {
      if (i + 1 >= argv.length) fail(2, "--dir needs a PATH");
      opts.dir = path.resolve(argv[++i]);
    } else if (a.startsWith("--dir=")) opts.dir = path.resolve(a.slice(6));
    else fail(2, `unknown argument ${JSON.stringify(a)} (use --check, --dir PATH)`);
  }
  if (!fs.existsSync(opts.dir) || !fs.statSync(opts.dir).isDirectory()) {
    fail(2, `not a folder: ${opts.dir}`);
  }
  return opts;
}

function compile(dir) {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".sol") && fs.statSync(path.join(dir, f)).isFile())
    .sort();
  if (files.length === 0) fail(2, `no .sol files in ${dir}`);

  const sources = {};
  const texts = {};
  for (const f of files) {
    const unit = `contracts/${f}`;
    texts[unit] = fs.readFileSync(path.join(dir, f), "utf8");
    sources[unit] = { content: texts[unit] };
  }

  const findImports = (unit) => {
    const candidates = unit.startsWith("contracts/")
      ? [path.join(dir, unit.slice("contracts/".length))]
      : [];
    candidates.push(path.join(REPO, "node_modules", unit));
    for (const p of candidates) {
      if (fs.existsSync(p)) return { contents: fs.readFileSync(p, "utf8") };
    }
    return { error: `import not found: ${unit}` };
  };

  let solc;
  try {
    solc = require("solc");
  } catch (e) {
    fail(2, `cannot load npm solc from ${REPO}/node_modules (run make setup): ${e.message}`);
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), { import: findImports }),
  );

  const errors = [];
  for (const e of output.errors ?? []) {
    const msg = e.formattedMessage ?? `${e.severity}: ${e.message}`;
    process.stderr.write(msg.endsWith("\n") ? msg : `${msg}\n`);
    if (e.severity === "error") errors.push(e);
  }
  if (errors.length) fail(2, `solc reported ${errors.length} error(s)`);

  const compiler = solc.version();
  const artifacts = new Map();
  for (const unit of Object.keys(sources)) {
    const contracts = output.contracts?.[unit] ?? {};
    for (const name of Object.keys(contracts).sort()) {
      if (artifacts.has(name)) {
        fail(2, `contract name ${name} is defined twice (${artifacts.get(name).sourceName}, ${unit})`);
      }
      const c = contracts[name];
      artifacts.set(name, {
        contractName: name,
        sourceName: unit,
        compiler,
        abi: sortKeys(c.abi),
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
        sourceSha256: sha256(texts[unit]),
      });
    }
  }
  return artifacts;
}

const render = (artifact) => `${JSON.stringify(artifact, null, 2)}\n`;

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = process.hrtime.bigint();
  const artifacts = compile(opts.dir);
  const outDir = path.join(opts.dir, "artifacts");
  const wanted = new Map(
    [...artifacts.values()].map((a) => [`${a.contractName}.json`, render(a)]),
  );
  syncArtifacts(outDir, wanted, {
    check: opts.check,
    fail,
    stale: "out of date with the sources; run: make contracts",
    extraNote: " (no contract of that name)",
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(
    `contracts: ${wanted.size} artifact(s) ${opts.check ? "up to date" : "built"} (${ms.toFixed(0)} ms)\n`,
  );
}

main();
