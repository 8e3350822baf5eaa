-- What the Neovim test scripts share (loaded with dofile from their folder): lines for the
-- test to read, failing with a non-zero exit, and starting `gadugi server --stdio` with
-- Neovim's built-in LSP client (0.7+) until it is initialized.
-- GADUGI_BIN: the binary (default: gadugi on PATH); GADUGI_REPO: the repository (default: cwd).

local M = {}

M.bin = os.getenv("GADUGI_BIN") or "gadugi"
M.root = os.getenv("GADUGI_REPO") or vim.fn.getcwd()

function M.say(s)
  io.stderr:write("nvim: " .. s .. "\n")
end

function M.fail(s)
  M.say("FAIL " .. s)
  vim.cmd("cquit 1")
end

-- Starts the server with these handlers and waits until it is initialized; returns its id.
function M.start(handlers)
  local client_id = vim.lsp.start_client({
    name = "gadugi",
    cmd = { M.bin, "server", "--stdio" },
    root_dir = M.root,
    handlers = handlers,
  })
  if not client_id then
    M.fail("could not start " .. M.bin)
  end
  if not vim.wait(20000, function()
    local c = vim.lsp.get_client_by_id(client_id)
    return c ~= nil and c.initialized
  end, 20) then
    M.fail("the server did not initialize")
  end
  M.say("initialized")
  return client_id
end

return M
