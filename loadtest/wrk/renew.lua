-- wrk script for loadtest/wrk/pinned.sh: renews h0..h999 of app bench.renew round-robin, one POST
-- /discovery/renew with a form body each.
counter = 0
request = function()
  counter = counter + 1
  local h = counter % 1000
  local body = "zone=sh001&env=dev&appid=bench.renew&hostname=h" .. h
  return wrk.format("POST", "/discovery/renew", {["Content-Type"]="application/x-www-form-urlencoded"}, body)
end
