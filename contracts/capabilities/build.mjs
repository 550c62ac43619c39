#!/usr/bin/env node
// Compile the capability ground-truth suite (contracts/capabilities/) with several pinned
// solc versions (npm solcjs packages side by side: solc-0.4.26 ... and solc 0.8.37), the
// optimizer off and on, into one JSON artifact per (version, optimizer):
// contracts/capabilities/artifacts/solc-<version>-<opt|noopt>.json.
//
// Usage:
//   node contracts/capabilities/build.mjs           rebuild the artifacts (drop stale ones)
//   node contracts/capabilities/build.mjs --check   rebuild in memory; exit 1 naming each
//                                                    artifact that differs, is missing or extra
//
// Sources:
//   src/*.sol  one capability per contract, written for every solc from 0.4.24 to 0.8.x;
//              the macros CONSTRUCTOR, FALLBACK, PAYABLE_SENDER, VIRTUAL and OVERRIDE are
//              replaced with each version's spelling before compiling.
//   oz/*.sol   OpenZeppelin Contracts (5.7.0 and the 4.9.6 presets via the npm alias oz4),
//              solc 0.8.37 only, one compile per file (both releases define ERC20).
// Every `// expect NAME: flag, flag` (or `none`) line names a contract to keep and the
// capability flags edge/scoring/capabilities.py must find in it; the tests read them.
//
// Determinism: standard-JSON input with every setting fixed (200 runs when on, no metadata
// hash where the version supports the setting, the version's default EVM version except
// cancun for 0.8.37), artifacts written with sorted keys, 2-space indent, trailing newline.
// Exit codes: 0 ok, 1 artifacts stale (--check), 2 compile error or bad usage.

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { sha256, sortKeys, syncArtifacts } from "../artifact_files.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const require = createRequire(path.join(REPO, "package.json"));

// [npm package, version as named in the artifact file]
const COMPILERS = [
  ["solc-0.4.26", "0.4.26"],
  ["solc-0.5.17", "0.5.17"],
  ["solc-0.6.12", "0.6.12"],
  ["solc-0.7.6", "0.7.6"],
  ["solc", "0.8.37"],
];

function fail(code, message) {
  process.stderr.write(`capabilities/build.mjs: ${message}\n`);
  process.exit(code);
}

const minor = (v) => Number(v.split(".")[1]);

function macros(text, version) {
  const m = minor(version);
  return text
    .replaceAll("CONSTRUCTOR", m >= 7 ? "constructor()" : "constructor() public")
    .replaceAll("FALLBACK", m >= 6 ? "fallback() external payable" : "function() external payable")
    .replaceAll("PAYABLE_SENDER", m >= 8 ? "payable(msg.sender)" : "msg.sender")
    .replaceAll("VIRTUAL", m >= 6 ? "virtual" : "")
    .replaceAll("OVERRIDE", m >= 6 ? "override" : "");
}

function expectations(text) {
  const out = new Map();
  for (const m of text.matchAll(/^\/\/ expect (\w+): (.*)$/gm)) out.set(m[1], m[2].trim());
  return out;
}

function listSol(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort();
}

function settings(version, optimize) {
  const s = {
    optimizer: { enabled: optimize, runs: 200 },
    outputSelection: { "*": { "*": ["evm.deployedBytecode.object"] } },
  };
  if (minor(version) >= 6) s.metadata = { bytecodeHash: "none" };
  if (version === "0.8.37") s.evmVersion = "cancun";
  return s;
}

function runSolc(solc, input, label) {
  const findImports = (unit) => {
    const p = path.join(REPO, "node_modules", unit);
    if (fs.existsSync(p)) return { contents: fs.readFileSync(p, "utf8") };
    return { error: `import not found: ${unit}` };
  };
  const compile = solc.compileStandardWrapper ?? solc.compile;
  const raw = minor(solc.version()) >= 6
    ? compile(JSON.stringify(input), { import: findImports })
    : compile(JSON.stringify(input), findImports);
  const output = JSON.parse(raw);
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const e of errors) process.stderr.write(`${label}: ${e.formattedMessage ?? e.message}\n`);
  if (errors.length) fail(2, `${label}: solc reported ${errors.length} error(s)`);
  return output;
}

function collect(output, texts, into) {
  for (const unit of Object.keys(texts).sort()) {
    const want = expectations(texts[unit]);
    const contracts = output.contracts?.[unit] ?? {};
    for (const name of [...want.keys()].sort()) {
      // An expected contract may be imported (the OpenZeppelin presets): search every unit.
      let found = contracts[name];
      let source = unit;
      if (!found) {
        for (const u of Object.keys(output.contracts ?? {}).sort()) {
          if (output.contracts[u][name]) {
            found = output.contracts[u][name];
            source = u;
            break;
          }
        }
      }
      if (!found) fail(2, `${unit}: expected contract ${name} was not compiled`);
      const code = found.evm.deployedBytecode.object;
      if (!code) fail(2, `${unit}: contract ${name} has no runtime code (abstract?)`);
      if (into[name]) fail(2, `contract name ${name} is defined twice`);
      into[name] = {
        sourceName: source,
        expect: want.get(name),
        deployedBytecode: `0x${code}`,
        sourceSha256: sha256(texts[unit]),
      };
    }
  }
}

function build() {
  const srcDir = path.join(HERE, "src");
  const ozDir = path.join(HERE, "oz");
  const artifacts = new Map();
  for (const [pkg, version] of COMPILERS) {
    let solc;
    try {
      solc = require(pkg);
    } catch (e) {
      fail(2, `cannot load npm ${pkg} (run make setup): ${e.message}`);
    }
    if (!solc.version().startsWith(version)) fail(2, `${pkg} is ${solc.version()}, want ${version}`);
    for (const optimize of [false, true]) {
      const label = `solc-${version}-${optimize ? "opt" : "noopt"}`;
      const contracts = {};
      const texts = {};
      const sources = {};
      for (const f of listSol(srcDir)) {
        const unit = `capabilities/${f}`;
        texts[unit] = fs.readFileSync(path.join(srcDir, f), "utf8");
        sources[unit] = { content: macros(texts[unit], version) };
      }
      const input = { language: "Solidity", sources, settings: settings(version, optimize) };
      collect(runSolc(solc, input, label), texts, contracts);
      if (version === "0.8.37") {
        for (const f of listSol(ozDir)) {
          const unit = `capabilities/oz/${f}`;
          const t = { [unit]: fs.readFileSync(path.join(ozDir, f), "utf8") };
          const ozInput = {
            language: "Solidity",
            sources: { [unit]: { content: t[unit] } },
            settings: settings(version, optimize),
          };
          collect(runSolc(solc, ozInput, `${label} ${f}`), t, contracts);
        }
      }
      artifacts.set(`${label}.json`, {
        compiler: solc.version(),
        optimizer: optimize,
        contracts,
      });
    }
  }
  return artifacts;
}

const render = (a) => `${JSON.stringify(sortKeys(a), null, 2)}\n`;

function main() {
  const args = process.argv.slice(2);
  const check = args.includes("--check");
  for (const a of args) if (a !== "--check") fail(2, `unknown argument ${JSON.stringify(a)}`);
  const t0 = process.hrtime.bigint();
  const wanted = new Map([...build()].map(([f, a]) => [f, render(a)]));
  const outDir = path.join(HERE, "artifacts");
  syncArtifacts(outDir, wanted, { check, fail, stale: "out of date; run: make capabilities" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const n = [...wanted.values()].reduce((k, t) => k + Object.keys(JSON.parse(t).contracts).length, 0);
  process.stdout.write(
    `capabilities: ${wanted.size} artifact file(s), ${n} runtime codes ${check ? "up to date" : "built"} (${ms.toFixed(0)} ms)\n`,
  );
}

main();
