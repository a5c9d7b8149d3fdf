-- wrk script: POST /api/v1/auth/login, rotating over the ACCOUNTS accounts bench/run
-- creates (bench0@example.com ...). Every request does one full argon2id verification
-- (m=19 MiB, t=2, p=1). Several accounts, because the login throttle takes an attempt
-- from the account's budget before hashing: more than 5 logins of one account in flight
-- at once would be refused with 429, by design.
local accounts = tonumber(os.getenv("ACCOUNTS") or "16")
local n = 0

request = function()
  n = n + 1
  local body = string.format(
    '{"email":"bench%d@example.com","password":"bench-password-123"}', n % accounts)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
