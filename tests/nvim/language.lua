-- Real-client test of prompt files as a language in `gadugi server --stdio`, with Neovim's
-- built-in LSP client (0.7+). Run headless:
--   GADUGI_BIN=... GADUGI_REPO=... nvim --headless --clean -c 'luafile tests/nvim/language.lua'
-- The repository must hold prompts/deploy.md (title "Deploy it"), prompts/schema.md (id
-- `schema`), prompts/setup-db.md and prompts/api.md, whose front matter's second line is
-- `depends_on: [schema]` and whose text has the line `Depends on: setup-db`. The script empties the `depends_on` list in the buffer
-- (unsaved), asks for completion inside it, then puts the cursor on `setup-db` and calls
-- vim.lsp.buf.definition(). Exits 0 only when the items are the tasks not depended on yet
-- and the jump lands in prompts/setup-db.md.

local t = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "client.lua")
local root, say, fail = t.root, t.say, t.fail
-- The jump leaves the edited (unsaved) buffer behind.
vim.o.hidden = true

local client_id = t.start({})

vim.cmd("edit " .. vim.fn.fnameescape(root .. "/prompts/api.md"))
local api = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(api, client_id)

-- Line 2 becomes `depends_on: []` in the buffer only; the cursor goes between the brackets.
vim.api.nvim_buf_set_lines(api, 1, 2, false, { "depends_on: []" })
vim.api.nvim_win_set_cursor(0, { 2, 13 })
local params = vim.lsp.util.make_position_params()
local answers = vim.lsp.buf_request_sync(api, "textDocument/completion", params, 20000)
local answer = answers and answers[client_id]
if not answer or answer.err then
  fail("completion: " .. vim.inspect(answers))
end
local items = answer.result and (answer.result.items or answer.result) or {}
local labels = {}
for _, item in ipairs(items) do
  table.insert(labels, item.label)
end
say("completion items: " .. table.concat(labels, ", "))
if table.concat(labels, ", ") ~= "deploy, deploy.md, schema, schema.md" then
  fail("expected the tasks api.md does not depend on yet (deploy, schema), got " .. vim.inspect(labels))
end
if items[1].detail ~= "Deploy it" then
  fail("the item's detail is not the task's title: " .. vim.inspect(items[1]))
end

-- Go to definition from `setup-db` in the `Depends on:` line.
local lines = vim.api.nvim_buf_get_lines(api, 0, -1, false)
local row
for i, line in ipairs(lines) do
  if line:match("^Depends on: setup%-db") then
    row = i
  end
end
if not row then
  fail("no `Depends on: setup-db` line in api.md")
end
vim.api.nvim_win_set_cursor(0, { row, 14 })
vim.lsp.buf.definition()
if not vim.wait(20000, function()
  return vim.api.nvim_buf_get_name(0):match("/prompts/setup%-db%.md$") ~= nil
end, 20) then
  fail("vim.lsp.buf.definition() stayed in " .. vim.api.nvim_buf_get_name(0))
end
say("definition landed in prompts/setup-db.md")

local client = vim.lsp.get_client_by_id(client_id)
client.stop()
vim.wait(10000, function() return client.is_stopped() end, 20)
say("ok")
vim.cmd("qall!")
