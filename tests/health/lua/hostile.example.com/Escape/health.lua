-- Everything a sandboxed check must not reach; reports what it found, Healthy only if nothing.
local found = {}
local function probe(name, value) if value ~= nil then table.insert(found, name) end end
probe("io", io)
probe("require", require)
probe("load", load)
probe("loadstring", loadstring)
probe("dofile", dofile)
probe("loadfile", loadfile)
probe("debug", debug)
probe("package", package)
probe("collectgarbage", collectgarbage)
probe("python", python)
probe("getfenv", getfenv)
probe("setfenv", setfenv)
probe("newproxy", newproxy)
probe("module", module)
probe("gcinfo", gcinfo)
probe("os.execute", os.execute)
probe("os.getenv", os.getenv)
probe("os.exit", os.exit)
probe("string.dump", ("").dump)
probe("string metatable", getmetatable("") or nil)
if #found == 0 then
  return {status = "Healthy", message = "nothing reachable"}
end
return {status = "Degraded", message = "reachable: " .. table.concat(found, ", ")}
