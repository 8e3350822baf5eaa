// Bundles the extension into one file (dist/extension.js) so the VSIX ships no node_modules.
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");
const options = {
  entryPoints: ["src/extension.ts"],
  bundle: true,
  outfile: "dist/extension.js",
  external: ["vscode"],
  format: "cjs",
  platform: "node",
  target: "node20",
  sourcemap: true,
  minify: !watch,
  logLevel: "info",
};
// The run graph's webview script (src/graphWebview.ts): a browser bundle the page loads with
// its nonce, so the VSIX carries everything the graph draws with (no CDN).
const webview = {
  ...options,
  entryPoints: ["src/graphWebview.ts"],
  outfile: "dist/graphWebview.js",
  external: [],
  format: "iife",
  platform: "browser",
  target: "es2022",
};
if (watch) {
  await (await esbuild.context(options)).watch();
  await (await esbuild.context(webview)).watch();
} else {
  await Promise.all([esbuild.build(options), esbuild.build(webview)]);
}
