-- Any kind of any example.com group: its status.phase, with a message saying which check ran.
local phases = {Running = "Healthy", Starting = "Progressing", Broken = "Degraded"}
local status = phases[obj.status and obj.status.phase or ""] or "Unknown"
return {status = status, message = "wildcard check: phase " .. tostring(obj.status and obj.status.phase)}
