-- Real-client test of `gadugi server --stdio` with Neovim's built-in LSP client (0.7+).
-- Run headless: GADUGI_BIN=... GADUGI_REPO=... nvim --headless --clean -c 'luafile tests/nvim/orchestrate.lua'
-- The repository must hold prompts/good.md (an agent that succeeds) and prompts/broken.md
-- (one that fails). Exits 0 only when the run's progress ended, the failing task's prompt
-- file got a diagnostic, tree notifications arrived and gadugi/treeState shows the run.

local t = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "client.lua")
local root, say, fail = t.root, t.say, t.fail

local progress_begin, progress_end, broken_diagnostic, tree_version = false, false, nil, 0

-- The configuration shown in README.md ("Other editors"), plus handlers that record what
-- the test checks.
local client_id = t.start({
  ["$/progress"] = function(_, result, ctx, config)
    if result.value.kind == "begin" then
      progress_begin = true
      say("progress begin: " .. result.value.title)
    elseif result.value.kind == "end" then
      progress_end = true
      say("progress end: " .. (result.value.message or ""))
    end
    return vim.lsp.handlers["$/progress"](_, result, ctx, config)
  end,
  ["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
    if result.uri:match("/broken%.md$") and #result.diagnostics > 0 then
      broken_diagnostic = result.diagnostics[1].message
      say("diagnostic on broken.md: " .. broken_diagnostic:gsub("\n", " | "))
    end
    return vim.lsp.handlers["textDocument/publishDiagnostics"](err, result, ctx, config)
  end,
  ["gadugi/treeChanged"] = function(_, result)
    if result.version <= tree_version then
      return -- stale: versions only rise
    end
    tree_version = result.version
  end,
})
local client = vim.lsp.get_client_by_id(client_id)
local caps = client.server_capabilities or client.resolved_capabilities

local files = {
  vim.uri_from_fname(root .. "/prompts/good.md"),
  vim.uri_from_fname(root .. "/prompts/broken.md"),
}
local run_id
client.request("workspace/executeCommand", {
  command = "gadugi.orchestrate",
  arguments = { { files = files, maxParallel = 2 } },
}, function(err, result)
  if err then
    fail("gadugi.orchestrate: " .. vim.inspect(err))
    return
  end
  run_id = result.runId
  say("run " .. run_id)
end)

if not vim.wait(90000, function()
  return run_id ~= nil and progress_end and broken_diagnostic ~= nil
end, 50) then
  fail(string.format("missing: runId=%s progress begin=%s end=%s diagnostic=%s", tostring(run_id),
    tostring(progress_begin), tostring(progress_end), tostring(broken_diagnostic)))
end
if not progress_begin then
  fail("no progress begin")
end
if not broken_diagnostic:match("task `broken` failed") then
  fail("unexpected diagnostic: " .. broken_diagnostic)
end
if tree_version == 0 then
  fail("no gadugi/treeChanged notification")
end

local tree
client.request("gadugi/treeState", {}, function(err, result)
  if err then
    fail("gadugi/treeState: " .. vim.inspect(err))
    return
  end
  tree = result
end)
if not vim.wait(20000, function() return tree ~= nil end, 20) then
  fail("no answer to gadugi/treeState")
end
if tree.runs[1].runId ~= run_id or tree.runs[1].status ~= "failed" then
  fail("tree state: " .. vim.inspect(tree.runs[1]))
end
say("tree state: run " .. run_id .. " " .. tree.runs[1].status .. ", version " .. tree.version)
local _ = caps

client.stop()
vim.wait(10000, function() return client.is_stopped() end, 20)
say("ok")
vim.cmd("qall!")
