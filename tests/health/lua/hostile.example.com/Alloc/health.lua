-- Keeps every string it makes: only the memory limit can stop it.
local hoard = {}
while true do hoard[#hoard + 1] = ("x"):rep(1024) .. #hoard end
