// Follows a task's log files as the agent writes them: what is there first, then every append,
// woken by file-system events on the attempt folder (not by polling the files). The folder may
// not exist yet when a task is queued: then it is looked for twice a second until it appears.
// Plain Node, unit-tested with real files.

import * as fs from "node:fs";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";

/** Receives new text of one of the followed files. */
export type LogSink = (text: string, file: string) => void;

export class LogFollower {
  private readonly offsets = new Map<string, number>();
  private watcher: fs.FSWatcher | undefined;
  private retry: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly decoders = new Map<string, StringDecoder>();

  /** `files` must share one folder (an attempt folder: stdout.log, stderr.log, verify.log). */
  constructor(
    private readonly files: readonly string[],
    private readonly sink: LogSink,
  ) {}

  /** Emits what the files hold now, then follows them. */
  start(): void {
    this.readAll();
    this.watch();
  }

  /** Stops following. */
  dispose(): void {
    this.disposed = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.retry) clearTimeout(this.retry);
  }

  /** Reads whatever was appended to any followed file since the last read. */
  readAll(): void {
    for (const file of this.files) this.readNew(file);
  }

  private watch(): void {
    if (this.disposed) return;
    const dir = path.dirname(this.files[0]);
    try {
      this.watcher = fs.watch(dir, () => this.readAll());
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
        this.later();
      });
      this.readAll(); // anything written between the first read and the watch
    } catch {
      this.later();
    }
  }

  private later(): void {
    if (this.disposed) return;
    this.retry = setTimeout(() => {
      this.readAll();
      this.watch();
    }, 500);
  }

  private readNew(file: string): void {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch {
      return; // not there yet
    }
    try {
      const size = fs.fstatSync(fd).size;
      let offset = this.offsets.get(file) ?? 0;
      if (size < offset) offset = 0; // truncated or replaced: start again
      if (size === offset) return;
      const buf = Buffer.alloc(size - offset);
      const n = fs.readSync(fd, buf, 0, buf.length, offset);
      this.offsets.set(file, offset + n);
      let decoder = this.decoders.get(file);
      if (!decoder) {
        decoder = new StringDecoder("utf8");
        this.decoders.set(file, decoder);
      }
      const text = decoder.write(buf.subarray(0, n));
      if (text) this.sink(text, file);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** The files of a task's attempt folder worth following, from the path of its stdout log. */
export function attemptLogFiles(stdoutLog: string): string[] {
  const dir = path.dirname(stdoutLog);
  return [stdoutLog, path.join(dir, "stderr.log"), path.join(dir, "verify.log")];
}
