-- Argo Rollouts Rollout: the controller reports a phase once it has seen the current spec.
-- Old controllers wrote observedGeneration as a string, hence tonumber. Needs string (open libs).
hs = {}
local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then return c end
  end
  return nil
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout spec update to be observed"
  return hs
end

local invalid = condition("InvalidSpec")
if invalid ~= nil then
  hs.status = "Degraded"
  hs.message = invalid.message
  return hs
end

local observed = tonumber(obj.status.observedGeneration)
if observed == nil or observed < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for rollout spec update to be observed"
  return hs
end

if (obj.spec ~= nil and obj.spec.paused) or (obj.status.pauseConditions ~= nil and #obj.status.pauseConditions > 0) then
  local reasons = {}
  for _, pause in ipairs(obj.status.pauseConditions or {}) do
    table.insert(reasons, pause.reason)
  end
  hs.status = "Suspended"
  if #reasons > 0 then
    hs.message = string.format("Rollout is paused (%s)", table.concat(reasons, ", "))
  else
    hs.message = "Rollout is paused"
  end
  return hs
end

if obj.status.phase == "Degraded" then
  hs.status = "Degraded"
elseif obj.status.phase == "Healthy" then
  hs.status = "Healthy"
else
  hs.status = "Progressing"
end
hs.message = obj.status.message or ""
return hs
