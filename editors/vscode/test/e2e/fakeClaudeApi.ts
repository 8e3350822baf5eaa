// A fake Anthropic Messages API on 127.0.0.1 for the real Claude Code CLI in the end-to-end
// tests: the Node twin of server/tests/common/claude_api.rs (same wire format: server-sent
// events `message_start`, one content block, `message_delta`, `message_stop`). Each
// `/v1/messages` request takes the next scripted reply (then "Done."); every body is recorded.

import * as http from "node:http";
import type * as net from "node:net";

/** One scripted model turn: a tool call, or text that ends the turn. */
export type Reply = { tool: string; input: Record<string, unknown> } | { text: string };

export class FakeClaudeApi {
  /** Bodies of the `/v1/messages` requests so far. */
  readonly requests: unknown[] = [];
  private turns = 0;

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly script: Reply[],
  ) {}

  static async start(script: Reply[]): Promise<FakeClaudeApi> {
    let api: FakeClaudeApi | undefined;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => api!.serve(req.url ?? "", Buffer.concat(chunks).toString("utf8"), res));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    api = new FakeClaudeApi(server, (server.address() as net.AddressInfo).port, script);
    return api;
  }

  /** `http://127.0.0.1:PORT`, for ANTHROPIC_BASE_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(url: string, body: string, res: http.ServerResponse): void {
    const path = url.split("?")[0];
    if (path === "/v1/messages/count_tokens") return send(res, 200, "application/json", '{"input_tokens":10}');
    if (path !== "/v1/messages") {
      return send(res, 404, "application/json", '{"type":"error","error":{"type":"not_found_error","message":"not found"}}');
    }
    try {
      this.requests.push(JSON.parse(body));
    } catch {
      this.requests.push(body);
    }
    const reply = this.script[this.turns++] ?? { text: "Done." };
    send(res, 200, "text/event-stream", render(reply, this.turns));
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "request-id": "req_1" });
  res.end(body);
}

function render(reply: Reply, turn: number): string {
  const [block, delta, stop] =
    "tool" in reply
      ? [
          { type: "tool_use", id: `toolu_e2e_${turn}`, name: reply.tool, input: {} },
          { type: "input_json_delta", partial_json: JSON.stringify(reply.input) },
          "tool_use",
        ]
      : [{ type: "text", text: "" }, { type: "text_delta", text: reply.text }, "end_turn"];
  const events = [
    {
      type: "message_start",
      message: {
        id: `msg_${turn}`, type: "message", role: "assistant", model: "claude-sonnet-4-5", content: [],
        stop_reason: null, stop_sequence: null, usage: { input_tokens: 1000, output_tokens: 1 },
      },
    },
    { type: "content_block_start", index: 0, content_block: block },
    { type: "content_block_delta", index: 0, delta },
    { type: "content_block_stop", index: 0 },
    { type: "message_delta", delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 50 } },
    { type: "message_stop" },
  ];
  return events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
}
