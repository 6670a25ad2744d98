-- Paces each wrk connection: a request, then `pause` ms of think time (default 10), so c connections send
-- about c * 1000 / (pause + latency) requests per second. Debian's wrk 4 has no -R rate option; wrk starts
-- its latency clock when a request is written, so the pause is not counted as latency.
-- Usage: wrk -t2 -c10 -d10s --latency -s bench/wrk_pace.lua URL -- 10
local pause = 10

function init(args)
  if args[1] ~= nil then
    pause = tonumber(args[1])
  end
end

function delay()
  return pause
end
