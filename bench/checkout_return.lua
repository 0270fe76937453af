-- POST /checkouts, then POST /checkouts/{id}/return for the checkout it answered.
-- Each wrk thread keeps its own queue of checkouts to return. Each checkout is for one of
-- BENCH_READERS readers (ids 1..n) drawn at random, so no reader reaches the loan limit.
local token = os.getenv("BENCH_TOKEN")
local book = os.getenv("BENCH_BOOK") or "1"
local readers = tonumber(os.getenv("BENCH_READERS") or "1")
local pending = {}
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}

request = function()
  local id = table.remove(pending)
  if id then
    return wrk.format("POST", "/checkouts/" .. id .. "/return", headers, "")
  end
  local body = '{"userId": ' .. math.random(1, readers) .. ', "bookId": ' .. book .. '}'
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
