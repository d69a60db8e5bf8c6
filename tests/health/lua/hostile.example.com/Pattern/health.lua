-- One string.find call that backtracks for hours inside C, where no instruction hook fires.
local s = ("a"):rep(3000)
s:find(".-.-.-.-.-b")
return {status = "Healthy"}
