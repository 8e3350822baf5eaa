-- Real-client test of agents that ask (issue 20) with Neovim's built-in LSP client (0.7+).
-- Run headless: GADUGI_BIN=... GADUGI_REPO=... nvim --headless --clean -c 'luafile tests/nvim/approve.lua'
-- A run in GADUGI_REPO has a question pending. Exits 0 only when the server announced it
-- with gadugi/approvalRequested and accepted the answer sent with gadugi/answerApproval.

local env = { bin = os.getenv("GADUGI_BIN") or "gadugi", root = os.getenv("GADUGI_REPO") or vim.fn.getcwd() }

-- One line on stderr for the test to read; a failure also ends Neovim with exit 1.
local function report(line, failed)
  io.stderr:write("nvim: " .. (failed and "FAIL " or "") .. line .. "\n")
  if failed then
    vim.cmd("cquit 1")
  end
end

local asked, answered = nil, nil
local client_id
client_id = vim.lsp.start_client({
  name = "gadugi",
  cmd = { env.bin, "server", "--stdio" },
  root_dir = env.root,
  handlers = {
    ["gadugi/approvalRequested"] = function(_, result)
      asked = result
      report("approvalRequested " .. result.id .. " " .. result.summary .. " (default " .. result.defaultDecision .. ")")
      local client = vim.lsp.get_client_by_id(client_id)
      client.request("gadugi/answerApproval", {
        runId = result.runId,
        taskId = result.taskId,
        id = result.id,
        decision = "allow",
      }, function(err, answer)
        if err then
          report("gadugi/answerApproval: " .. vim.inspect(err), true)
          return
        end
        answered = answer
        report("answered " .. answer.id .. " " .. answer.decision)
      end)
    end,
  },
})
if not client_id then
  report("could not start " .. env.bin, true)
end

if not vim.wait(60000, function()
  return answered ~= nil
end, 20) then
  report("no question announced and answered within 60s (asked: " .. vim.inspect(asked) .. ")", true)
end
vim.lsp.stop_client(client_id)
vim.wait(2000, function()
  return vim.lsp.get_client_by_id(client_id) == nil
end, 20)
vim.cmd("qall!")
