hs = {
hs.status = "Healthy"
return hs
