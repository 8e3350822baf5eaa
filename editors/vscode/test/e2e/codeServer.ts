// Harness of the end-to-end tests: a real VS Code (code-server 4.100.3, installed by
// scripts/install-code-server.sh into target/code-server) driven through Debian's chromium
// with playwright-core. Everything runs offline on loopback, in temp dirs of its own.
//
// Every process started here (code-server in its own process group, chromium through
// Playwright) is registered and stopped by `stopAll()`, which the tests call in `finally`
// and which also runs on process exit and on SIGINT/SIGTERM: a failing test leaves nothing
// behind. Waits are for events (a selector, a page condition, /healthz), with generous
// limits that only end a test that would otherwise hang.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { chromium, type Browser, type Locator, type Page } from "playwright-core";

// The browser side of page.evaluate/waitForFunction (tsconfig has no DOM lib; module-local).
export interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  classList: { contains(c: string): boolean };
}
declare const document: { querySelectorAll(selector: string): Iterable<PageElement> & { length: number } };
declare const MutationObserver: new (cb: () => void) => { observe(node: unknown, options: object): void; disconnect(): void };

/** editors/vscode (this file is compiled to editors/vscode/out/test/e2e/). */
export const extensionRoot = path.resolve(__dirname, "..", "..", "..");
/** The repository root. */
export const repoRoot = path.resolve(extensionRoot, "..", "..");
/** Screenshots and logs of the runs (gitignored, kept by CI as artifacts). */
export const artifactsDir = path.join(extensionRoot, "test-artifacts");
/** The VSIX `npm run package` writes. */
export const packagedVsix = path.join(extensionRoot, "gadugi-vscode.vsix");

/** The longest wait for anything that should happen (only ends a hung test). */
export const LONG = 120_000;

const cleanups: { name: string; sync: () => void; async: () => Promise<void> }[] = [];

/** Stops every process the harness started (newest first). */
export async function stopAll(): Promise<void> {
  while (cleanups.length > 0) {
    const c = cleanups.pop()!;
    try {
      await c.async();
    } catch (e) {
      console.error(`stopping ${c.name}: ${(e as Error).message}`);
    }
  }
}

process.on("exit", () => {
  // Synchronous last resort (a crash, an assertion that escaped the finally).
  for (const c of cleanups.reverse()) {
    try {
      c.sync();
    } catch {
      // already gone
    }
  }
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

export function log(message: string): void {
  console.log(`[e2e ${new Date().toISOString().slice(11, 23)}] ${message}`);
}

/** The code-server launcher installed by scripts/install-code-server.sh. */
export function codeServerBin(): string {
  const bin = process.env.GADUGI_CODE_SERVER ?? path.join(repoRoot, "target", "code-server", "node_modules", ".bin", "code-server");
  if (!fs.existsSync(bin)) {
    throw new Error(`code-server is not installed (${bin}): run bash scripts/install-code-server.sh`);
  }
  return bin;
}

/** The gadugi binary for settings (`gadugi.server.path`) and for the test repository's git checks. */
export function gadugiBin(): string {
  const candidates = [
    process.env.GADUGI_BIN,
    path.join(extensionRoot, "bin", "gadugi"),
    process.env.CARGO_TARGET_DIR && path.resolve(repoRoot, process.env.CARGO_TARGET_DIR, "release", "gadugi"),
    path.join(repoRoot, "target", "release", "gadugi"),
    process.env.CARGO_TARGET_DIR && path.resolve(repoRoot, process.env.CARGO_TARGET_DIR, "debug", "gadugi"),
    path.join(repoRoot, "target", "debug", "gadugi"),
  ];
  for (const c of candidates) {
    if (c && fs.existsSync(c)) return c;
  }
  throw new Error("no gadugi binary: run npm run package (bundles it in editors/vscode/bin) or cargo build");
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

export const GADUGI_TOML = 'max_parallel = 4\n\n[agent]\nprofile = "simulated"\n';
export const GOOD_MD = "# Good task\n\nWrite the file.\n\n<!-- gadugi-sim: seconds=3 file=src/good.txt -->\n";
export const BAD_MD = "# Bad task\n\nThis one fails.\n\n<!-- gadugi-sim: seconds=3 file=src/bad.txt exit=3 -->\n";

/** A temp dir removed by stopAll (unless GADUGI_E2E_KEEP is set). */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gadugi-e2e-${prefix}-`));
  const remove = () => {
    if (!process.env.GADUGI_E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push({ name: `temp dir ${dir}`, sync: remove, async: async () => remove() });
  return dir;
}

/**
 * A committed git repository `<temp>/repo` with gadugi.toml and the given prompt files
 * (path relative to the repository → content). Task worktrees go next to it
 * (`<temp>/repo.gadugi-worktrees`), inside the same temp dir.
 */
export function makeRepo(files: Record<string, string>): string {
  const repo = path.join(tempDir("repo"), "repo");
  fs.mkdirSync(repo);
  for (const [rel, text] of Object.entries({ "gadugi.toml": GADUGI_TOML, ...files })) {
    fs.mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true });
    fs.writeFileSync(path.join(repo, rel), text);
  }
  git(repo, "init", "-q", "-b", "main");
  git(repo, "config", "user.name", "Gadugi E2E");
  git(repo, "config", "user.email", "e2e@gadugi.invalid");
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", "prompts");
  return repo;
}

/** The standard repository of the tests: good.md succeeds, bad.md fails with exit 3. */
export function makePromptRepo(): string {
  return makeRepo({ "prompts/good.md": GOOD_MD, "prompts/bad.md": BAD_MD });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(0);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** User settings that keep the workbench quiet and offline. */
export function baseSettings(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "workbench.enableExperiments": false,
    "extensions.ignoreRecommendations": true,
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "chat.disableAIFeatures": true,
    "chat.commandCenter.enabled": false,
    "window.commandCenter": false,
    // The built-in git extension would keep its own git processes on the test repository.
    "git.enabled": false,
    "git.autoRepositoryDetection": false,
    "files.hotExit": "off",
    "workbench.editor.enablePreview": false,
    "window.restoreWindows": "none",
    // The explorer would re-select the active editor's file, undoing a multi-selection.
    "explorer.autoReveal": false,
    ...extra,
  };
}

export interface CodeServerOptions {
  /** The folder to open. */
  folder: string;
  /** Leave Workspace Trust on (the untrusted-workspace test); default: --disable-workspace-trust. */
  workspaceTrust?: boolean;
  /** User settings (merged over baseSettings()). */
  settings?: Record<string, unknown>;
  /** A VSIX to install before starting. */
  vsix?: string;
  /** A name for logs and screenshots. */
  name: string;
  /** More environment for code-server, its extension host and the gadugi server it starts (a fake `gh` on PATH). */
  env?: Record<string, string>;
}

/** A running code-server, in its own process group, with its own config, data and extensions. */
export class CodeServer {
  readonly url: string;
  private exited = false;

  private constructor(
    readonly name: string,
    readonly port: number,
    readonly folder: string,
    readonly userDataDir: string,
    readonly extensionsDir: string,
    readonly proc: ChildProcess,
    readonly logFile: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    proc.once("exit", () => (this.exited = true));
  }

  static env(home: string): NodeJS.ProcessEnv {
    return {
      ...process.env,
      XDG_CONFIG_HOME: path.join(home, "config"),
      XDG_DATA_HOME: path.join(home, "data"),
      XDG_CACHE_HOME: path.join(home, "cache"),
      // The gallery at a closed port: nothing is fetched.
      EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: "http://127.0.0.1:9/gallery", itemUrl: "http://127.0.0.1:9/item" }),
      // The test runner's Node options stay out of code-server's Node.
      NODE_OPTIONS: "",
    };
  }

  static async start(opts: CodeServerOptions): Promise<CodeServer> {
    const bin = codeServerBin();
    const home = tempDir(`code-${opts.name}`);
    const userDataDir = path.join(home, "user-data");
    const extensionsDir = path.join(home, "extensions");
    fs.mkdirSync(path.join(userDataDir, "User"), { recursive: true });
    fs.mkdirSync(extensionsDir, { recursive: true });
    // With an environment of the test's own, VSCODE_CLI=1 keeps it: else the server resolves
    // the login shell's environment for the extension host, and a login shell resets PATH.
    const env = { ...CodeServer.env(home), ...(opts.env ? { ...opts.env, VSCODE_CLI: "1" } : {}) };
    if (opts.vsix) {
      const t0 = Date.now();
      const out = execFileSync(
        bin,
        ["--user-data-dir", userDataDir, "--extensions-dir", extensionsDir, "--install-extension", opts.vsix],
        { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: LONG },
      );
      log(`installed ${path.basename(opts.vsix)} in ${Date.now() - t0} ms: ${out.trim().split("\n").pop()}`);
    }
    // The packaged VSIX bundles the server (bin/gadugi); without one, point the setting at a build.
    const settings = { ...opts.settings };
    if (opts.vsix && !("gadugi.server.path" in settings) && !bundledServer(extensionsDir)) {
      settings["gadugi.server.path"] = gadugiBin();
      log(`the VSIX bundles no server: gadugi.server.path = ${settings["gadugi.server.path"]}`);
    }
    fs.writeFileSync(path.join(userDataDir, "User", "settings.json"), JSON.stringify(baseSettings(settings), null, 2));
    const port = await freePort();
    fs.mkdirSync(artifactsDir, { recursive: true });
    const logFile = path.join(artifactsDir, `${opts.name}-code-server.log`);
    const logFd = fs.openSync(logFile, "w");
    const args = [
      "--bind-addr",
      `127.0.0.1:${port}`,
      "--auth",
      "none",
      "--disable-telemetry",
      "--disable-update-check",
      "--disable-getting-started-override",
      "--user-data-dir",
      userDataDir,
      "--extensions-dir",
      extensionsDir,
    ];
    if (!opts.workspaceTrust) args.push("--disable-workspace-trust");
    args.push(opts.folder);
    // detached: the child calls setsid() and leads a new process group; its file watcher and
    // extension host (and the gadugi server they start) are in it, and die with it.
    const proc = spawn(bin, args, { env, detached: true, stdio: ["ignore", logFd, logFd] });
    fs.closeSync(logFd);
    const pgid = proc.pid!;
    const server = new CodeServer(opts.name, port, opts.folder, userDataDir, extensionsDir, proc, logFile);
    cleanups.push({
      name: `code-server ${opts.name}`,
      sync: () => {
        if (groupAlive(pgid)) process.kill(-pgid, "SIGKILL");
      },
      async: () => server.stop(),
    });
    log(`code-server ${opts.name} (pgid ${pgid}) on ${server.url}, log ${path.relative(repoRoot, logFile)}`);
    const deadline = Date.now() + LONG;
    while ((await httpStatus(`${server.url}/healthz`)) !== 200) {
      if (server.exited) throw new Error(`code-server exited at start; see ${logFile}:\n${fs.readFileSync(logFile, "utf8")}`);
      if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz; see ${logFile}`);
      await sleep(100);
    }
    return server;
  }

  /** Kills the whole process group (TERM, then KILL if it lingers). */
  async stop(): Promise<void> {
    const pgid = this.proc.pid!;
    this.saveLogs();
    if (!groupAlive(pgid)) return;
    process.kill(-pgid, "SIGTERM");
    for (let i = 0; i < 50 && groupAlive(pgid); i++) await sleep(100);
    if (groupAlive(pgid)) process.kill(-pgid, "SIGKILL");
    for (let i = 0; i < 50 && groupAlive(pgid); i++) await sleep(100);
  }

  /** Copies the workbench's logs (extension host, output channels) to test-artifacts/<name>-logs. */
  saveLogs(): void {
    const from = path.join(this.userDataDir, "logs");
    const to = path.join(artifactsDir, `${this.name}-logs`);
    try {
      fs.rmSync(to, { recursive: true, force: true });
      if (fs.existsSync(from)) fs.cpSync(from, to, { recursive: true });
    } catch (e) {
      log(`saving logs: ${(e as Error).message}`);
    }
  }

  /** Waits until the output channel's log file (under the user-data logs) matches; returns its text. */
  async waitForOutputChannel(channel: string, re: RegExp): Promise<string> {
    const deadline = Date.now() + LONG;
    const name = new RegExp(`^\\d+-${escapeRegExp(channel)}\\.log$`);
    for (;;) {
      const files = listFiles(path.join(this.userDataDir, "logs")).filter((f) => name.test(path.basename(f)));
      const text = files.map((f) => fs.readFileSync(f, "utf8")).join("\n");
      if (re.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`the ${channel} output never matched ${re}: ${JSON.stringify(text)}`);
      await sleep(250);
    }
  }

  /** Process ids of the group (code-server and everything it started). */
  groupPids(): number[] {
    const out = execFileSync("ps", ["-eo", "pid=,pgid="], { encoding: "utf8" });
    return out
      .split("\n")
      .map((l) => l.trim().split(/\s+/).map(Number))
      .filter(([, g]) => g === this.proc.pid)
      .map(([p]) => p);
  }

  /** URL of the workbench with the folder open (and optional extra query). */
  workbenchUrl(query: Record<string, string> = {}): string {
    const q = new URLSearchParams({ folder: this.folder, ...query });
    return `${this.url}/?${q.toString()}`;
  }
}

/** Command lines of every `gadugi server` process on the machine (for "nothing started"). */
export function gadugiServerProcesses(): string[] {
  const out = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /\bgadugi server\b/.test(l) || /\/gadugi\s+server\b/.test(l));
}

/** Debian's chromium through playwright-core (no downloaded browser). */
export async function launchBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.GADUGI_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
    timeout: LONG,
  });
  cleanups.push({
    name: "chromium",
    sync: () => {
      // Playwright kills the browsers it launched on exit itself.
    },
    async: () => browser.close(),
  });
  return browser;
}

/** A workbench page with helpers for the parts the tests read and click. */
export class Workbench {
  private shots = 0;

  constructor(
    readonly page: Page,
    readonly name: string,
  ) {
    page.setDefaultTimeout(LONG);
  }

  static async open(browser: Browser, server: CodeServer, query: Record<string, string> = {}): Promise<Workbench> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const wb = new Workbench(page, server.name);
    page.on("pageerror", (e) => log(`page error: ${e.message}`));
    await page.goto(server.workbenchUrl(query), { timeout: LONG });
    await page.locator(".monaco-workbench").waitFor({ timeout: LONG });
    return wb;
  }

  /** The explorer, with its rows rendered. */
  async showExplorer(): Promise<void> {
    const rows = this.page.locator(".explorer-folders-view .monaco-list-row");
    if ((await rows.count()) === 0) {
      await this.runCommand("View: Show Explorer");
    }
    await rows.first().waitFor();
  }

  /** An explorer row by file or folder name. */
  explorerRow(name: string): Locator {
    return this.page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${name}"]`).or(
      this.page.locator(".explorer-folders-view .monaco-list-row").filter({
        has: this.page.locator(".label-name", { hasText: new RegExp(`^${escapeRegExp(name)}$`) }),
      }),
    ).first();
  }

  /**
   * Selects explorer rows: a click on the first, Ctrl+click on the others, until exactly these
   * are selected (a click also opens the file, and the workbench may reset the selection while
   * it does: then select again).
   */
  async selectExplorerRows(names: string[]): Promise<void> {
    const selected = () =>
      this.page.evaluate(
        () =>
          [...document.querySelectorAll(".explorer-folders-view .monaco-list-row")]
            .filter((r) => r.getAttribute("aria-selected") === "true")
            .map((r) => r.getAttribute("aria-label") ?? ""),
      );
    const want = [...names].sort().join("|");
    const deadline = Date.now() + LONG;
    for (;;) {
      await this.explorerRow(names[0]).click();
      await this.page.locator(`.tabs-container .tab[aria-label^="${names[0]}"]`).first().waitFor();
      for (const name of names.slice(1)) await this.explorerRow(name).click({ modifiers: ["Control"] });
      // Settled: the same selection twice, a moment apart.
      let now = (await selected()).sort().join("|");
      for (let i = 0; i < 10; i++) {
        await this.page.waitForTimeout(100);
        const again = (await selected()).sort().join("|");
        if (again === now && again === want) break;
        now = again;
      }
      if (now === want) return;
      log(`explorer selection is [${now}], not [${want}]: selecting again`);
      if (Date.now() > deadline) throw new Error(`could not select ${want} in the explorer`);
    }
  }

  /** Expands a folder row of the explorer if it is collapsed. */
  async expandFolder(name: string): Promise<void> {
    const row = this.explorerRow(name);
    await row.waitFor();
    if ((await row.getAttribute("aria-expanded")) === "false") await row.click();
    await this.page.waitForFunction(
      (n) =>
        [...document.querySelectorAll(".explorer-folders-view .monaco-list-row")].some(
          (r) => r.getAttribute("aria-label") === n && r.getAttribute("aria-expanded") === "true",
        ),
      name,
      { timeout: LONG },
    );
  }

  /**
   * Right-clicks an explorer row and picks a context-menu item. The extension's menu items
   * appear a moment after the explorer: when the item is missing, Escape and right-click again.
   */
  async explorerContextMenu(rowName: string, item: string, screenshotStep?: string): Promise<void> {
    const menuItem = this.contextMenuItem(item);
    const deadline = Date.now() + LONG;
    for (;;) {
      await this.explorerRow(rowName).click({ button: "right" });
      try {
        await menuItem.waitFor({ timeout: 3000 });
        // Right after the window opens, VS Code may not have resolved Workspace Trust yet:
        // an item whose enablement is `isWorkspaceTrusted` shows disabled, and an open menu
        // never updates. Close it and open it again, as a person would a moment later.
        if ((await menuItem.getAttribute("aria-disabled")) !== "true") break;
        throw new Error(`"${item}" is disabled for now`);
      } catch (e) {
        await this.page.keyboard.press("Escape");
        if (Date.now() > deadline) throw new Error(`no enabled "${item}" in the context menu of ${rowName}: ${String(e)}`);
        await this.page.waitForTimeout(500);
      }
    }
    if (screenshotStep) await this.screenshot(screenshotStep);
    await this.pickMenuItem(menuItem);
  }

  /**
   * Clicks an item of the open context menu and waits for the menu to close. Seen in CI on a
   * loaded machine: the click landed while the menu was still settling, the item stayed
   * highlighted and the menu open, and nothing ran. The menu closes before its command runs,
   * so while it is still open the command has not run and choosing the item again (with
   * the keyboard this time) cannot run it twice.
   */
  async pickMenuItem(menuItem: Locator): Promise<void> {
    const menu = this.page.locator(".context-view .monaco-menu").first();
    await menuItem.click();
    for (let tries = 0; ; tries++) {
      try {
        await menu.waitFor({ state: "hidden", timeout: 3000 });
        return;
      } catch (e) {
        if (tries >= 3 || !(await menuItem.isVisible())) throw e;
        await menuItem.hover();
        await this.page.keyboard.press("Enter");
      }
    }
  }

  /** A context-menu item by name (the menu is in a shadow root; Playwright pierces it). */
  contextMenuItem(name: string): Locator {
    return this.page.getByRole("menuitem", { name, exact: true }).first();
  }

  /** Names of the items of the open context menu and whether each is enabled. */
  async openMenuItems(): Promise<{ name: string; enabled: boolean }[]> {
    // The menu lives in a shadow root; Playwright's CSS engine pierces open shadow roots.
    const items = this.page.locator(".context-view .monaco-menu .action-item:not(.disabled-separator)").filter({
      has: this.page.locator(".action-label:not(.separator)"),
    });
    await items.first().waitFor();
    const out: { name: string; enabled: boolean }[] = [];
    for (const el of await items.all()) {
      const label = el.locator(".action-label").first();
      const name = (await label.innerText()).trim();
      const disabled =
        (await el.evaluate((e) => (e as unknown as PageElement).classList.contains("disabled"))) ||
        (await el.locator(".action-menu-item").first().getAttribute("aria-disabled")) === "true";
      if (name) out.push({ name, enabled: !disabled });
    }
    return out;
  }

  /** Texts of the status-bar items. */
  async statusBarTexts(): Promise<string[]> {
    return this.page.locator("#workbench\\.parts\\.statusbar .statusbar-item").evaluateAll((els) =>
      els.map((e) => (e.textContent ?? "").replace(/\s+/g, " ").trim()).filter((t) => t.length > 0),
    );
  }

  /** Waits until a status-bar item's text matches (checked in the page on every frame). */
  async waitForStatusBar(re: RegExp): Promise<string> {
    const handle = await this.page.waitForFunction(
      ([source, flags]) => {
        const re = new RegExp(source, flags);
        for (const e of document.querySelectorAll("#workbench\\.parts\\.statusbar .statusbar-item")) {
          const t = (e.textContent ?? "").replace(/\s+/g, " ").trim();
          if (re.test(t)) return t;
        }
        return false;
      },
      [re.source, re.flags] as const,
      { timeout: LONG, polling: "raf" },
    );
    return (await handle.jsonValue()) as string;
  }

  /** Opens the Gadugi view container from the activity bar. */
  async openGadugiView(): Promise<void> {
    const item = this.page.locator('.activitybar .action-item a[aria-label^="Gadugi"], .activitybar .action-item [aria-label^="Gadugi"]').first();
    await item.waitFor();
    const pane = this.viewPane("Runs");
    // A run's start reveals the view by itself, and clicking the icon of the container already
    // shown hides the side bar (seen in CI: the click raced the reveal). So wait for the view
    // first, and click again if a click hid it.
    for (let tries = 0; tries < 4; tries++) {
      try {
        await pane.waitFor({ timeout: tries === 0 ? 2000 : 5000 });
        return;
      } catch {
        // Top left: the icon's badge (agents running) covers its lower right and takes the click.
        await item.click({ position: { x: 6, y: 6 }, force: true });
      }
    }
    await pane.waitFor();
  }

  /** Drags the side bar's edge to x (for pictures where its rows are not cut off). */
  async widenSideBar(x: number): Promise<void> {
    const box = await this.page.locator("#workbench\\.parts\\.sidebar").boundingBox();
    if (!box) return;
    const edge = box.x + box.width;
    const y = box.y + box.height / 2;
    await this.page.mouse.move(edge - 1, y);
    await this.page.mouse.down();
    await this.page.mouse.move(x, y, { steps: 8 });
    await this.page.mouse.up();
  }

  /** A view pane of the side bar by its title. */
  viewPane(title: string): Locator {
    return this.page
      .locator("#workbench\\.parts\\.sidebar .pane")
      .filter({ has: this.page.locator(".pane-header", { has: this.page.locator("h3.title", { hasText: new RegExp(`^${escapeRegExp(title)}$`, "i") }) }) })
      .first();
  }

  /** A row of a tree view by its label. */
  treeRow(viewTitle: string, label: string): Locator {
    return this.viewPane(viewTitle)
      .locator(".monaco-list-row")
      .filter({ has: this.page.locator(".label-name", { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) })
      .first();
  }

  /** The rows of a tree view: label, description and aria-label. */
  async treeRows(viewTitle: string): Promise<{ label: string; description: string; aria: string; level: number }[]> {
    return this.viewPane(viewTitle)
      .locator(".monaco-list-row")
      .evaluateAll((rows) =>
        rows.map((r) => ({
          label: (r.querySelector(".label-name")?.textContent ?? "").trim(),
          description: (r.querySelector(".label-description")?.textContent ?? "").trim(),
          aria: r.getAttribute("aria-label") ?? "",
          level: Number(r.getAttribute("aria-level") ?? "0"),
        })),
      );
  }

  /** Waits until the rows of a tree view satisfy a condition (re-read on every DOM change). */
  async waitForTree(
    viewTitle: string,
    what: string,
    ok: (rows: { label: string; description: string; aria: string; level: number }[]) => boolean,
  ): Promise<{ label: string; description: string; aria: string; level: number }[]> {
    const deadline = Date.now() + LONG;
    let rows = await this.treeRows(viewTitle);
    while (!ok(rows)) {
      if (Date.now() > deadline) {
        throw new Error(`the ${viewTitle} view never showed ${what}; last rows: ${JSON.stringify(rows, null, 1)}`);
      }
      // Wake up on the next change of the view's DOM (or after a while, to re-check).
      await this.viewPane(viewTitle)
        .evaluate(
          (pane) =>
            new Promise<void>((resolve) => {
              const obs = new MutationObserver(() => {
                obs.disconnect();
                resolve();
              });
              obs.observe(pane, { subtree: true, childList: true, characterData: true, attributes: true });
              setTimeout(() => {
                obs.disconnect();
                resolve();
              }, 1000);
            }),
        )
        .catch(() => undefined);
      rows = await this.treeRows(viewTitle);
    }
    return rows;
  }

  /** Runs a command through the command palette (F1), by its title. */
  async runCommand(title: string): Promise<void> {
    await this.page.keyboard.press("F1");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(`>${title}`);
    const row = this.page.locator(".quick-input-widget .monaco-list-row", { hasText: title }).first();
    await row.waitFor();
    await this.page.keyboard.press("Enter");
  }

  /** Rows of the Problems panel (opens it). */
  async problems(): Promise<string[]> {
    const panel = this.page.locator(".markers-panel");
    if (!(await panel.isVisible())) await this.runCommand("View: Focus Problems");
    await panel.waitFor();
    return panel.locator(".monaco-list-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("aria-label") ?? r.textContent ?? ""));
  }

  /** Saves a screenshot of the page to test-artifacts/<name>-NN-<step>.png. */
  async screenshot(step: string, file?: string): Promise<string> {
    fs.mkdirSync(artifactsDir, { recursive: true });
    this.shots += 1;
    const out = file ?? path.join(artifactsDir, `${this.name}-${String(this.shots).padStart(2, "0")}-${step}.png`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await this.page.screenshot({ path: out });
    log(`screenshot ${path.relative(repoRoot, out)}`);
    return out;
  }
}

/** Whether an installed Gadugi extension in extensionsDir has its bundled server binary. */
function bundledServer(extensionsDir: string): boolean {
  return fs
    .readdirSync(extensionsDir)
    .some((d) => d.startsWith("gadugi.gadugi-vscode-") && fs.existsSync(path.join(extensionsDir, d, "bin", "gadugi")));
}

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).map((f) => path.join(dir, f));
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Runs an extension-host suite (compiled `suite/*.js`, the `extensionTestsPath` kind) inside
 * code-server with the extension under development (editors/vscode, its dist/ bundle) in the
 * folder `repo`: the workbench calls codeAutomationExit with the suite's exit code and
 * codeAutomationLog with its console output, printed here. Returns the exit code and the lines.
 */
export async function runExtensionHostSuite(opts: {
  name: string;
  suite: string;
  repo: string;
  env?: Record<string, string>;
}): Promise<{ code: number; lines: string[]; wb: Workbench }> {
  // The development extension has bin/gadugi once packaged; else point the setting at a build.
  const bundled = path.join(extensionRoot, "bin", "gadugi");
  const settings = fs.existsSync(bundled) ? {} : { "gadugi.server.path": gadugiBin() };
  const server = await CodeServer.start({ name: opts.name, folder: opts.repo, settings, env: opts.env });
  const remote = (p: string) => `vscode-remote://127.0.0.1:${server.port}${p}`;
  const payload = JSON.stringify([
    ["extensionDevelopmentPath", remote(extensionRoot)],
    ["extensionTestsPath", remote(opts.suite)],
  ]);
  const browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const wb = new Workbench(page, opts.name);
  const lines: string[] = [];
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  await page.exposeFunction("codeAutomationLog", (type: unknown, args: unknown) => {
    const text = Array.isArray(args) ? args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ") : String(args);
    const line = `[${String(type)}] ${text}`;
    lines.push(line);
    console.log(`  suite: ${line}`);
  });
  await page.exposeFunction("codeAutomationExit", (code: number) => resolveExit(code));
  await page.goto(server.workbenchUrl({ payload }), { timeout: LONG });
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    exited,
    new Promise<number>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the suite never called codeAutomationExit")), 3 * LONG);
    }),
  ]).finally(() => clearTimeout(timer));
  log(`suite exit code ${code}`);
  return { code, lines, wb };
}

/** Runs `body` and stops every process and temp dir of the harness afterwards, pass or fail. */
export async function withHarness<T>(name: string, body: () => Promise<T>, onFailure?: () => Promise<void>): Promise<T> {
  const t0 = Date.now();
  try {
    return await body();
  } catch (e) {
    if (onFailure) await onFailure().catch((err) => log(`on failure: ${(err as Error).message}`));
    throw e;
  } finally {
    await stopAll();
    log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
