-- POST /checkouts, then POST /checkouts/{id}/return for the checkout it answered.
-- Each wrk thread keeps its own queue of checkouts to return.
local token = os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_CHECKOUT_BODY")
local pending = {}
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}

request = function()
  local id = table.remove(pending)
  if id then
    return wrk.format("POST", "/checkouts/" .. id .. "/return", headers, "")
  end
  return wrk.format("POST", "/checkouts", headers, body)
end

response = function(status, hdrs, resp)
  if status == 201 then
    local id = resp:match('"id": (%d+)')
    if id then table.insert(pending, id) end
  elseif status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
