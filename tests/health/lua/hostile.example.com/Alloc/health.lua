-- Keeps every table it makes: only the memory limit can stop it.
local hoard = {}
while true do hoard[#hoard + 1] = {#hoard, "x", #hoard + 1} end
