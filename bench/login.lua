-- wrk script: POST /api/v1/auth/login with the account bench/run creates.
-- Every request does one full argon2id verification (m=19 MiB, t=2, p=1).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-123"}'

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
