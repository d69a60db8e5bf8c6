-- Written for Argo CD, which runs checks in gopher-lua (Lua 5.1): table.getn, unpack,
-- the 5.1 string library and numbers that print without ".0".
local hs = {status = "Progressing", message = "Waiting for conditions"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = {}
for i = 1, table.getn(obj.status.conditions) do
  local condition = obj.status.conditions[i]
  if condition.type == "Ready" then
    table.insert(ready, condition)
  end
end
local have, want = unpack({obj.status.readyReplicas or 0, obj.spec.replicas / 1})
local name = string.gsub(obj.metadata.name, "%-", "_")
if table.getn(ready) == 1 and ready[1].status == "True" and have == want then
  hs.status = "Healthy"
  hs.message = string.format("%s: %d/%s ready (%s)", name, have, tostring(want), string.upper(string.sub(ready[1].reason, 1, 3)))
elseif table.getn(ready) == 1 and ready[1].status == "False" then
  hs.status = "Degraded"
  hs.message = string.rep("!", 2) .. " " .. ready[1].message
else
  hs.message = "waiting: " .. have .. "/" .. want
end
return hs
