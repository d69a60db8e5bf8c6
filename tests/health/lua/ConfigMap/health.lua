-- A core-group kind lives at the top of the tree, keyed by the bare kind as in Argo CD.
if obj.data ~= nil and obj.data.broken == "true" then
  return {status = "Degraded", message = "ConfigMap says it is broken"}
end
return {status = "Healthy", message = "ConfigMap looks fine"}
