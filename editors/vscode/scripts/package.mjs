// `npm run package`: builds the server (cargo, release), bundles it stripped into bin/, bundles
// the extension with esbuild, and packs gadugi-vscode.vsix with vsce, shipping only what the
// extension needs (.vscodeignore). Fails when the VSIX is not under 15 MB.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const root = path.resolve(here, "..", "..");
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: "inherit" });

console.log("== cargo build --release (the gadugi binary)");
run("cargo", ["build", "--release", "--locked", "-p", "gadugi"], root);
const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
const built = path.join(target, "release", "gadugi");
const bundled = path.join(here, "bin", "gadugi");
fs.mkdirSync(path.dirname(bundled), { recursive: true });
fs.copyFileSync(built, bundled);
try {
  // Debug line tables make up most of a release binary; the VSIX needs none of them.
  run("strip", ["--strip-debug", bundled], here);
} catch {
  console.warn("strip is not available: the bundled binary keeps its debug sections");
}
fs.chmodSync(bundled, 0o755);

fs.copyFileSync(path.join(root, "LICENSE"), path.join(here, "LICENSE"));

console.log("== esbuild (dist/extension.js)");
run(process.execPath, ["esbuild.mjs"], here);

console.log("== vsce package");
const vsix = path.join(here, "gadugi-vscode.vsix");
const vsce = path.join(root, "node_modules", "@vscode", "vsce", "vsce");
run(process.execPath, [vsce, "package", "--no-dependencies", "--skip-license", "--out", vsix], here);
const mb = fs.statSync(vsix).size / 1e6;
console.log(`${vsix}: ${mb.toFixed(1)} MB`);
if (mb >= 15) {
  console.error(`the VSIX is ${mb.toFixed(1)} MB; it must stay under 15 MB`);
  process.exit(1);
}
